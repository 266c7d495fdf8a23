package disk

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseTarget(t *testing.T) {
	dir := t.TempDir()
	at := filepath.Join(dir, "odd@2") // a file whose name ends in @N
	if err := os.WriteFile(at, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in   string
		path string
		part int
		ok   bool
	}{
		{"/dev/sda@2", "/dev/sda", 2, true},
		{"disk.img@1", "disk.img", 1, true},
		{"a@b@12", "a@b", 12, true},
		{`\\.\PhysicalDrive1@3`, `\\.\PhysicalDrive1`, 3, true},
		{at, at, 0, false},                             // exists: the whole name wins
		{at + "@5", at, 5, true},                       // partition 5 of the file "odd@2"
		{"disk.img", "disk.img", 0, false},             // no @
		{"disk.img@", "disk.img@", 0, false},           // no number
		{"@1", "@1", 0, false},                         // no disk
		{"disk.img@0", "disk.img@0", 0, false},         // numbers start at 1
		{"disk.img@01", "disk.img@01", 0, false},       // no leading zeros
		{"disk.img@-1", "disk.img@-1", 0, false},       // no sign
		{"disk.img@+1", "disk.img@+1", 0, false},       // no sign
		{"disk.img@1x", "disk.img@1x", 0, false},       // digits only
		{"disk.img@99999", "disk.img@99999", 0, false}, // above the cap
	} {
		path, part, ok := ParseTarget(c.in)
		if path != c.path || part != c.part || ok != c.ok {
			t.Errorf("ParseTarget(%q) = %q, %d, %v; want %q, %d, %v", c.in, path, part, ok, c.path, c.part, c.ok)
		}
	}
}

func TestGUIDRoundTrip(t *testing.T) {
	const s = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
	g, err := ParseGUID("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7")
	if err != nil {
		t.Fatal(err)
	}
	// On disk the first three fields are little-endian.
	if g[0] != 0xA2 || g[3] != 0xEB || g[4] != 0xE5 || g[6] != 0x33 || g[8] != 0x87 || g[15] != 0xC7 {
		t.Fatalf("byte order: % x", g)
	}
	if GUIDString(g) != s {
		t.Fatalf("GUIDString = %s", GUIDString(g))
	}
	if gptTypeNames[g] != "Microsoft basic data" {
		t.Fatalf("name %q", gptTypeNames[g])
	}
	for _, bad := range []string{"", "EBD0A0A2B9E5443387C068B6B72699C7", "EBD0A0A2-B9E5-4433-87C0-68B6B72699CG", "EBD0A0A2-B9E5-4433-87C068-B6B72699C7"} {
		if _, err := ParseGUID(bad); err == nil {
			t.Errorf("ParseGUID(%q) accepted", bad)
		}
	}
}
