// In-memory doubles for tests and simulations (hashicorp/raft's InmemStore / InmemTransport).
export { MemoryStorage } from '../memory-storage.js';
export { MemoryNetwork, type NetworkFaults } from './memory-network.js';
export { storageContract, type ContractCase, type ContractStorage } from './storage-contract.js';
