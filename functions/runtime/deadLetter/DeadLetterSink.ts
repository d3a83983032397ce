import type { DeadLetterEnvelope } from './envelope.ts';

/** Where dead letters go. `send` resolves once the letter is durably queued, and rejects if it never is. */
export interface DeadLetterSink {
  /** `delaySeconds` overrides the delay of a retry queue message's stage. */
  send(envelope: DeadLetterEnvelope, delaySeconds?: number): Promise<void>;
  /** Sends whatever is buffered and waits for every pending `send`. */
  flush(): Promise<void>;
  /** Whether the envelope goes whole, not truncated to the size limit. */
  fitsWhole(envelope: DeadLetterEnvelope): boolean;
}
