import type { BalancerKind } from '@weldr/store';
import type { Balancer, Peer, RandomFn } from './balancer.js';
import { LeastConnections } from './least-connections.js';
import { PowerOfTwo } from './power-of-two.js';
import { RoundRobin } from './round-robin.js';
import { WeightedRoundRobin } from './weighted-round-robin.js';

export type { Balancer, Peer, RandomFn } from './balancer.js';
export { LeastConnections, PowerOfTwo, RoundRobin, WeightedRoundRobin };

/**
 * `phase` staggers the rotations of processes that balance the same pool side by side
 * (the proxy workers of a node: worker n has phase n-1): each starts its rotation that
 * many picks in, so the first requests through N workers reach N different origins
 * instead of all reaching the first one (two requests on new connections used to land
 * on the same origin whenever the two connections went to different workers).
 */
export function createBalancer<T extends Peer>(kind: BalancerKind, random: RandomFn, phase = 0): Balancer<T> {
  switch (kind) {
    case 'round-robin':
      return new RoundRobin<T>(phase);
    case 'weighted-round-robin':
      return new WeightedRoundRobin<T>(phase);
    case 'least-connections':
      return new LeastConnections<T>(phase);
    case 'power-of-two':
      return new PowerOfTwo<T>(random);
  }
}
