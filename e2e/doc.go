// Package e2e holds tests that run the real cairn binary: node processes on 127.0.0.1
// with their own data directories, `cairn attach` serving NBD, and real clients (the
// kernel's ext4 through nbdfuse and a loop device). The processes are killed for real
// (SIGKILL), so these tests exercise exactly what an operator runs.
package e2e
