module github.com/cairnstore/cairn

go 1.26

require (
	github.com/anishathalye/porcupine v1.3.1
	github.com/google/btree v1.1.3
	pgregory.net/rapid v1.3.0
)
