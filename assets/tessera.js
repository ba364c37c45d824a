// Conveniences only: every page works without this script.

function enableCopyButtons() {
  for (const button of document.querySelectorAll('button[data-copy]')) {
    const field = document.getElementById(button.dataset.copy);
    if (!field || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(field.value);
        button.textContent = 'Copied';
      } catch {
        field.select();
        button.textContent = 'Press Ctrl+C';
      }
      setTimeout(() => {
        button.textContent = 'Copy';
      }, 2000);
    });
  }
}

function selectOnFocus() {
  for (const field of document.querySelectorAll('input.token-value')) {
    field.addEventListener('focus', () => field.select());
  }
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
toggleCustomRange();
