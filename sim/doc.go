// Package sim drives many Cairn nodes and clients in one goroutine, in virtual time,
// from one seed: a seeded PRNG picks the cluster's shape and fault rates (swarm
// testing), injects network, process, disk and clock faults, records every client
// operation and checks the history for linearizability and the other properties of
// the spec. The same seed on the same commit gives a bit-identical run.
package sim
