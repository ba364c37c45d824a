// Conveniences only: every page works without this script.

/**
 * Shows `label` on the button for two seconds. The button's box is a polite live region (set up in
 * enableCopyButtons), so screen readers announce the change too.
 */
function flash(button, label, { copied }) {
  button.textContent = label;
  button.toggleAttribute('data-copied', copied);
  clearTimeout(button.resetTimer);
  button.resetTimer = setTimeout(() => {
    button.textContent = 'Copy';
    button.removeAttribute('data-copied');
  }, 2000);
}

function enableCopyButtons() {
  for (const button of document.querySelectorAll('button[data-copy]')) {
    const field = document.getElementById(button.dataset.copy);
    if (!field || !navigator.clipboard) continue;
    button.hidden = false;
    button.parentElement.setAttribute('aria-live', 'polite');
    button.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(field.value);
        flash(button, 'Copied', { copied: true });
      } catch {
        field.select();
        flash(button, 'Press Ctrl+C', { copied: false });
      }
    });
  }
}

function selectOnFocus() {
  for (const field of document.querySelectorAll('input.token-value')) {
    field.addEventListener('focus', () => field.select());
  }
}

/** Token menus close on Escape (focus back on their button), on a click elsewhere, and one at a time. */
function closeMenus() {
  const menus = [...document.querySelectorAll('details.menu')];
  const closeAll = (except) => {
    for (const menu of menus) if (menu !== except) menu.open = false;
  };
  for (const menu of menus) {
    menu.addEventListener('toggle', () => menu.open && closeAll(menu));
    menu.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape' || !menu.open) return;
      menu.open = false;
      menu.querySelector('summary').focus();
    });
  }
  document.addEventListener('click', (event) => {
    if (!event.target.closest('details.menu')) closeAll();
  });
}

/** The From and To dates matter only for a custom range. */
function toggleCustomRange() {
  const period = document.getElementById('period');
  if (!period) return;
  const update = () => {
    for (const id of ['from', 'to']) {
      const field = document.getElementById(id);
      if (field) field.closest('.field').hidden = period.value !== 'custom';
    }
  };
  period.addEventListener('change', update);
  update();
}

enableCopyButtons();
selectOnFocus();
closeMenus();
toggleCustomRange();

// A page restored from the back-forward cache must not show a secret token again: the server
// sends no-store, and this clears what a browser may still restore.
window.addEventListener('pageshow', (event) => {
  if (!event.persisted) return;
  for (const form of document.forms) delete form.dataset.submitting;
  const reveal = document.getElementById('new-token');
  if (reveal) reveal.closest('section')?.remove();
});

// A second click on a submit button would send the form again: with a password confirmation the
// first answer renews the session and the second one finds the old session gone.
document.addEventListener('submit', (event) => {
  const form = event.target;
  if (form.method !== 'post') return;
  if (form.dataset.submitting) event.preventDefault();
  else form.dataset.submitting = 'true';
});
