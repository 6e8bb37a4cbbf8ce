// Every refusal in plain words: the task manager's typed errors, the
// agent's rejections and network failures.

import type { UserError } from './bindings/task_manager.did';

/** An error whose message is meant for the user as it is. */
export class PlainError extends Error {
  /** The task manager's refusal, when it was one. */
  readonly userError: UserError | null;
  constructor(message: string, userError: UserError | null = null) {
    super(message);
    this.userError = userError;
  }
}

function seconds(n: bigint): string {
  const s = Number(n);
  if (s < 90) return `${s} second${s === 1 ? '' : 's'}`;
  const m = Math.ceil(s / 60);
  return `${m} minute${m === 1 ? '' : 's'} (${s} seconds)`;
}

/** The task manager's refusal of a user's call, in plain words. */
export function describeUserError(e: UserError): string {
  if ('RateLimited' in e) {
    const r = e.RateLimited;
    return (
      `You have used your tokens for now: this request needs ${r.requested} and ${r.available} ` +
      `are left. Try again in ${seconds(r.retry_after_secs)}.`
    );
  }
  if ('ServiceBusy' in e) {
    return `The service is busy for now. Try again in ${seconds(e.ServiceBusy.retry_after_secs)}.`;
  }
  if ('QuotaExhausted' in e) {
    const q = e.QuotaExhausted;
    return `Your allowance is spent: this request needs ${q.requested} tokens and ${q.available} are left. Ask the operator for more.`;
  }
  if ('ExceedsQuota' in e) {
    const q = e.ExceedsQuota;
    return `This request needs ${q.requested} tokens, more than your bucket can ever hold (${q.capacity}). Ask for fewer new tokens or write a shorter message.`;
  }
  if ('NotRegistered' in e) return 'You are not registered yet: press "Register".';
  if ('AnonymousCaller' in e) return 'Sign in first: anonymous callers cannot use the service.';
  if ('Banned' in e) return 'This account has been banned by the operator.';
  if ('NotAllowed' in e) return 'Registration is by invitation, and this account is not on the list.';
  if ('ApprovalPending' in e) return 'Your registration is waiting for the operator\u2019s approval.';
  if ('RegistrationClosed' in e) return `Registration is closed: the service has all the users it takes (${e.RegistrationClosed.max}).`;
  if ('Paused' in e) return 'The operator has paused the service. Try again later.';
  if ('QueueFull' in e) return 'Too many requests are waiting. Try again in a little while.';
  if ('TooManyJobs' in e) return `You already have ${e.TooManyJobs.active} requests running (at most ${e.TooManyJobs.max}). Wait for one to finish.`;
  if ('TooManyWaiters' in e) return `Too many waiting requests (at most ${e.TooManyWaiters.max}).`;
  if ('PromptTooLong' in e) return `The conversation is too long (${e.PromptTooLong.bytes} bytes, at most ${e.PromptTooLong.max}). Start a new chat.`;
  if ('UnknownModel' in e) return `There is no model named "${e.UnknownModel.model}".`;
  if ('ModelNotDeployed' in e) return `The model "${e.ModelNotDeployed.model}" is not running on any worker right now.`;
  if ('ModelIncomplete' in e) return `The model "${e.ModelIncomplete.model}" is still being uploaded (${e.ModelIncomplete.missing} chunks missing).`;
  if ('InvalidRequest' in e) return `The request was refused: ${e.InvalidRequest.reason}.`;
  if ('UnknownJob' in e) return `The answer ${e.UnknownJob.job} is no longer known (it may have expired).`;
  if ('JobFinished' in e) return 'That answer has already finished.';
  if ('JobFailed' in e) return `The answer failed: ${e.JobFailed.reason}.`;
  if ('WaitTimedOut' in e) return 'The answer took too long; it goes on in the background.';
  if ('WaitInterrupted' in e) return 'The wait was interrupted; the answer goes on in the background.';
  if ('UnknownChunk' in e) return `The model "${e.UnknownChunk.model}" has no chunk ${e.UnknownChunk.index}.`;
  if ('GenericError' in e) return `The service refused: ${e.GenericError.message} (code ${e.GenericError.code}).`;
  return 'The service refused the request.';
}

/** Any thrown error (agent, network, ours) in plain words. */
export function describeError(err: unknown): string {
  if (err instanceof PlainError) return err.message;
  const text = err instanceof Error ? err.message : String(err);
  if (/Failed to fetch|NetworkError|ECONNREFUSED|Load failed/i.test(text)) {
    return 'The network cannot be reached. Is the replica running?';
  }
  if (/Canister .* not found|canister_not_found|destination invalid/i.test(text)) {
    return 'The task manager canister was not found on this network: check the canister id in the configuration.';
  }
  if (/rejected the message|inspect_message|IC0406|IC0516/i.test(text)) {
    return `The task manager refused the call. ${firstLine(text)}`;
  }
  if (/certificate|signature|root key/i.test(text)) {
    return `The network's answer could not be verified: ${firstLine(text)}`;
  }
  return `Something went wrong: ${firstLine(text)}`;
}

function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim().length > 0) ?? text;
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}
