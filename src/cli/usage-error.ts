/** A wrong invocation: exit status 2, as is usual for usage errors. */
export class UsageError extends Error {}
