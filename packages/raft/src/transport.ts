import type { Message } from './types.js';

/**
 * Where the driver sends a Ready's messages — only after that Ready's entries
 * and hard state are durable. Delivery may lose, duplicate, delay or reorder
 * messages; Raft tolerates all of it. The receiving side validates each
 * decoded message (validateMessage) and feeds it to RawNode.step.
 */
export interface Transport {
  send(messages: readonly Message[]): void;
}
