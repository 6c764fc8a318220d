// Package core is Cairn's deterministic per-node state machine.
//
// A Node owns every replica hosted on one storage node and, when configured, the
// authority that issues volume epochs. It never reads a clock, spawns a goroutine,
// touches the network or the disk directly, or iterates a map where order matters:
// time, randomness, messages and storage completions arrive as inputs (Step), and
// every effect (messages, journal appends, checkpoints) leaves as data (Output).
// The simulator and the production drivers run exactly this code.
package core
