/**
 * Outgoing e-mail: the hand-over message to the booking user, and the operators' hand-over
 * notices and failure reports (lib/handover/message.ts).
 */
export interface OutgoingMail {
  to: string[];
  cc?: string[];
  subject: string;
  text: string;
  html?: string;
}

export interface Mailer {
  /**
   * Hands the message to the mail server. Rejected recipients or an unreachable server throw
   * (TransientError for what a retry may fix); the error never quotes the message body.
   *
   * At least once: what a retry may fix is retried before throwing, including a message whose
   * answer was lost after it was sent (OutcomeUnknownError when that is how the last attempt
   * ended) — SMTP cannot be asked whether it arrived, so it may arrive twice, each copy with the
   * same Message-ID. A caller that repeats send() after a TransientError accepts the same.
   */
  send(mail: OutgoingMail): Promise<{ messageId: string }>;
}
