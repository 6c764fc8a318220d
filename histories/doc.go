// Package histories records the operations block-device clients perform on
// shared volumes and checks the recorded history for linearizability with
// Porcupine.
//
// Each block holds a uint64 value (0 means never written). A history is
// checked per volume and, inside a volume, per block: every block is an
// independent register, and a multi-block operation contributes one
// single-block operation, with the same call and return times, to each
// block it touches. The checked property is therefore per-block
// linearizability: a multi-block read that overlaps a multi-block write may
// see some blocks new and others old, as on a real block device, but once an
// operation has returned its effect on every block is visible to every
// operation that starts later.
//
// Operations whose outcome is unknown (a timeout, a crashed client) are kept
// in the history. An unknown write may or may not take effect, at any time
// after its call; an unknown read constrains nothing.
package histories
