// Package fuzz holds Cairn's native Go fuzz targets. It has no non-test code: the
// targets live in _test.go files and exercise the exported surface of other packages
// (today the wire codec of package core, core.Encode and core.Decode).
//
// Run one target with
//
//	go test ./fuzz -run='^$' -fuzz='^FuzzDecodeMessage$' -fuzztime=30s
//
// or every target with `make fuzz`. Plain `go test ./fuzz` replays only the seed
// corpus (and any saved failures under testdata/fuzz), so it is cheap enough for CI.
package fuzz
