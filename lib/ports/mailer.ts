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
   */
  send(mail: OutgoingMail): Promise<{ messageId: string }>;
}
