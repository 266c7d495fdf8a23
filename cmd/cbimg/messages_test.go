//go:build linux

package main

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
)

var update = flag.Bool("update", false, "rewrite testdata/messages.golden")

// Every message a user sees for a mistake or a refusal, as the binary
// prints it, against testdata/messages.golden (go test -run
// TestMessagesGolden -update rewrites it). Each names the file it is about,
// says a path as it was typed, names no Go package and repeats nothing.
func TestMessagesGolden(t *testing.T) {
	testvol.Need(t, "losetup")
	dir := t.TempDir()
	fat := testvol.Real(t, "fat/mkfs-fat16-lfn.img")
	ntfs := testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"})
	run := func(stdin []byte, args ...string) (string, string, int) {
		return cbimgIn(t, dir, stdin, args...)
	}
	must := func(args ...string) {
		if _, stderr, code := run(nil, args...); code != 0 {
			t.Fatalf("%v: exit %d %s", args, code, stderr)
		}
	}
	// Fixtures, named as a user would type them.
	copyTo := func(src, name string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name), b, 0o600)
	}
	copyTo(fat, "fat.img")
	copyTo(ntfs, "ntfs.img")
	rnd := make([]byte, 100000)
	for i := range rnd {
		rnd[i] = byte(i*7919 + i>>8)
	}
	os.WriteFile(filepath.Join(dir, "rnd.bin"), rnd, 0o600)
	must("backup", "-q", "fat.img", "v.cbi")
	b, _ := os.ReadFile(filepath.Join(dir, "v.cbi"))
	// Damage the end of the first chunk's data: one chunk problem.
	bad := append([]byte{}, b...)
	bad[len(bad)/2] ^= 0xff
	os.WriteFile(filepath.Join(dir, "damaged.cbi"), bad, 0o600)
	os.WriteFile(filepath.Join(dir, "cut.cbi"), b[:len(b)/2], 0o600)
	os.WriteFile(filepath.Join(dir, "old.raw"), []byte("a file holding data"), 0o600)
	os.WriteFile(filepath.Join(dir, "small"), make([]byte, 1<<20), 0o600)
	loop := strings.TrimSpace(testvol.Run(t, "losetup", "--show", "-f", filepath.Join(dir, "small")))
	defer exec.Command("losetup", "-d", loop).Run()
	must("extract", "-q", "v.cbi", "/", "-C", "out")

	cases := []struct {
		args   []string
		stdin  []byte
		stdout bool // the golden file holds standard output too
	}{
		{args: []string{"info", "rnd.bin"}},
		{args: []string{"verify", "rnd.bin"}, stdout: true},
		{args: []string{"info", "nonexist.img"}},
		{args: []string{"info", "cut.cbi"}},
		{args: []string{"verify", "damaged.cbi"}, stdout: true},
		{args: []string{"verify", "-q", "damaged.cbi"}},
		{args: []string{"restore", "nonexist.img", "t.raw"}},
		{args: []string{"restore", "damaged.cbi", "t.raw"}},
		{args: []string{"backup", "nonexist.img", "x.cbi"}},
		{args: []string{"backup", "rnd.bin", "x.cbi"}},
		{args: []string{"restore", "--yes", "v.cbi", "v.cbi"}},
		{args: []string{"restore", "--yes", "v.cbi", loop}},
		{args: []string{"restore", "v.cbi", "old.raw"}},
		{args: []string{"restore", "-", "old.raw"}, stdin: b},
		{args: []string{"restore", "-", "-"}, stdin: b},
		{args: []string{"backup", "fat.img", "v.cbi"}},
		{args: []string{"extract", "v.cbi", "/", "-C", "out"}},
		{args: []string{"cat", "v.cbi", "/nope.txt"}},
		{args: []string{"cat", "v.cbi", `\Nope\Deeper.txt`}},
		{args: []string{"ls", "v.cbi", "/nope"}},
		{args: []string{"extract", "v.cbi", "/nope", "-C", "out2"}},
		{args: []string{"cat", "v.cbi", "/"}},
		{args: []string{"info"}},
		{args: []string{"restore", "v.cbi"}},
		{args: []string{"extract", "v.cbi"}},
		{args: []string{"ls", "a", "b", "c"}},
		{args: []string{"frobnicate"}},
		{args: []string{"bakup", "a", "b"}},
		{args: []string{"backup", "--bogus", "a", "b"}},
		{args: []string{"backup", "--compress", "lz4", "fat.img", "y.cbi"}},
		{args: []string{"backup", "ntfs.img", "d.cbi"}, stdout: true},
		{args: []string{"backup", "--no-default-excludes", "--exclude", "*.bin", "--exclude", "/Data/Nested/*", "ntfs.img", "n.cbi"}, stdout: true},
	}
	var got strings.Builder
	numbers := regexp.MustCompile(`: [0-9.]+ [KMG]?i?B in [0-9.]+ (ms|s)\b`)
	dates := regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d`)
	// How much a built volume uses depends on the mkntfs at hand.
	usage := regexp.MustCompile(`\(([a-z0-9]+), [0-9.]+ [KMG]?i?B used, [0-9.]+ [KMG]?i?B stored\)`)
	for _, c := range cases {
		stdout, stderr, code := run(c.stdin, c.args...)
		cmdline := strings.Join(c.args, " ")
		got.WriteString("$ cbimg " + cmdline + "\n")
		if c.stdout && stdout != "" {
			got.WriteString(stdout)
		}
		got.WriteString(stderr)
		got.WriteString("[exit " + strconv.Itoa(code) + "]\n\n")
	}
	text := strings.ReplaceAll(got.String(), loop, "/dev/loopN")
	text = strings.ReplaceAll(text, dir, "$DIR")
	text = numbers.ReplaceAllString(text, ": SIZE in T")
	text = dates.ReplaceAllString(text, "DATE")
	text = usage.ReplaceAllString(text, "($1, USED used, STORED stored)")
	golden := filepath.Join("testdata", "messages.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if text != string(want) {
		t.Errorf("messages differ from %s (go test -run TestMessagesGolden -update rewrites it):\n%s", golden, text)
	}
	// What no message may hold.
	for _, bad := range []string{"restorecore:", "backupcore:", "image:", "volume:", "browse:", "locate:", "open source: open", "open open"} {
		if strings.Contains(text, bad) {
			t.Errorf("a message holds %q", bad)
		}
	}
}
