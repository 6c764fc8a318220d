package main

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"1G": 1 << 30, "512M": 512 << 20, "4096K": 4096 << 10, "8192": 8192, "2GiB": 2 << 30} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1G", "1000", "1.5G", "2P", "G"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestVolumeID(t *testing.T) {
	if id, err := volumeID("7"); err != nil || id != 7 {
		t.Fatalf("numeric: %d %v", id, err)
	}
	a, _ := volumeID("demo")
	b, _ := volumeID("demo")
	c, _ := volumeID("other")
	if a != b || a == c || a < 1<<31 {
		t.Fatalf("names: %d %d %d", a, b, c)
	}
	for _, bad := range []string{"", "0", "2147483648"} {
		if _, err := volumeID(bad); err == nil {
			t.Errorf("volumeID(%q) accepted", bad)
		}
	}
}
