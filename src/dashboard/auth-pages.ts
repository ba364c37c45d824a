import { html } from 'hono/html';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from '../services/passwords.ts';
import { formTokenField, type Markup, type Notice, type PageContext, page } from './view.ts';

export interface SignInView {
  readonly next: string;
  readonly username?: string;
  readonly signupOpen: boolean;
  readonly notice?: Notice;
}

export function signInPage(context: PageContext, view: SignInView): Markup {
  const signup = view.signupOpen
    ? html`<p>New to Tessera? <a href="${context.base}/signup">Create an account</a></p>`
    : '';
  const body = html`<section class="card narrow">
<h1>Sign in</h1>
<form method="post" action="${context.base}/signin" class="stack">
${formTokenField(context)}
<input type="hidden" name="next" value="${view.next}">
<div class="field">
<label for="username">Username</label>
<input id="username" name="username" type="text" required autocomplete="username" autocapitalize="none" spellcheck="false" maxlength="64" value="${view.username ?? ''}" autofocus>
</div>
<div class="field">
<label for="password">Password</label>
<input id="password" name="password" type="password" required autocomplete="current-password" maxlength="${MAX_PASSWORD_LENGTH}">
</div>
<button type="submit" class="button primary">Sign in</button>
</form>
${signup}
</section>` as Markup;
  return page(context, { title: 'Sign in', body, notice: view.notice });
}

export interface SignUpView {
  readonly username?: string;
  readonly email?: string;
  readonly notice?: Notice;
}

export function signUpPage(context: PageContext, view: SignUpView): Markup {
  const body = html`<section class="card narrow">
<h1>Create an account</h1>
<form method="post" action="${context.base}/signup" class="stack">
${formTokenField(context)}
<div class="field">
<label for="username">Username</label>
<input id="username" name="username" type="text" required autocomplete="username" autocapitalize="none" spellcheck="false" maxlength="32" pattern="[a-z0-9][a-z0-9_\\-]{0,31}" aria-describedby="username-hint" value="${view.username ?? ''}" autofocus>
<p id="username-hint" class="hint">1-32 characters: lowercase letters, digits, "_" or "-". It appears in your tokens.</p>
</div>
<div class="field">
<label for="email">Email</label>
<input id="email" name="email" type="email" required autocomplete="email" maxlength="254" value="${view.email ?? ''}">
</div>
<div class="field">
<label for="password">Password</label>
<input id="password" name="password" type="password" required autocomplete="new-password" minlength="${MIN_PASSWORD_LENGTH}" maxlength="${MAX_PASSWORD_LENGTH}" aria-describedby="password-hint">
<p id="password-hint" class="hint">At least ${MIN_PASSWORD_LENGTH} characters.</p>
</div>
<button type="submit" class="button primary">Sign up</button>
</form>
<p>Already have an account? <a href="${context.base}/signin">Sign in</a></p>
</section>` as Markup;
  return page(context, { title: 'Create an account', body, notice: view.notice });
}

export function signUpClosedPage(context: PageContext): Markup {
  const body = html`<section class="card narrow">
<h1>Sign-up is closed</h1>
<p>Accounts on this Tessera server are created by its operator. <a href="${context.base}/signin">Sign in</a></p>
</section>` as Markup;
  return page(context, { title: 'Sign-up is closed', body });
}

export function passwordPage(context: PageContext, notice?: Notice): Markup {
  const body = html`<section class="card narrow">
<h1>Change password</h1>
<p>Changing your password signs you out everywhere else.</p>
<form method="post" action="${context.base}/account/password" class="stack">
${formTokenField(context)}
<div class="field">
<label for="current-password">Current password</label>
<input id="current-password" name="currentPassword" type="password" required autocomplete="current-password" maxlength="${MAX_PASSWORD_LENGTH}">
</div>
<div class="field">
<label for="new-password">New password</label>
<input id="new-password" name="newPassword" type="password" required autocomplete="new-password" minlength="${MIN_PASSWORD_LENGTH}" maxlength="${MAX_PASSWORD_LENGTH}" aria-describedby="new-password-hint">
<p id="new-password-hint" class="hint">At least ${MIN_PASSWORD_LENGTH} characters.</p>
</div>
<div class="field">
<label for="repeat-password">Confirm new password</label>
<input id="repeat-password" name="repeatPassword" type="password" required autocomplete="new-password" maxlength="${MAX_PASSWORD_LENGTH}">
</div>
<button type="submit" class="button primary">Change password</button>
</form>
</section>` as Markup;
  return page({ ...context, section: 'password' }, { title: 'Change password', body, notice });
}

export function errorPage(context: PageContext, title: string, message: string): Markup {
  const body = html`<section class="card narrow">
<h1>${title}</h1>
<p>${message}</p>
<p><a href="${context.base}/account">Back to your tokens</a></p>
</section>` as Markup;
  return page(context, { title, body });
}
