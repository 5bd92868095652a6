import type { BalancerKind } from '@weldr/store';
import type { Balancer, Peer, RandomFn } from './balancer.js';
import { LeastConnections } from './least-connections.js';
import { PowerOfTwo } from './power-of-two.js';
import { RoundRobin } from './round-robin.js';
import { WeightedRoundRobin } from './weighted-round-robin.js';

export type { Balancer, Peer, RandomFn } from './balancer.js';
export { LeastConnections, PowerOfTwo, RoundRobin, WeightedRoundRobin };

export function createBalancer<T extends Peer>(kind: BalancerKind, random: RandomFn): Balancer<T> {
  switch (kind) {
    case 'round-robin':
      return new RoundRobin<T>();
    case 'weighted-round-robin':
      return new WeightedRoundRobin<T>();
    case 'least-connections':
      return new LeastConnections<T>();
    case 'power-of-two':
      return new PowerOfTwo<T>(random);
  }
}
