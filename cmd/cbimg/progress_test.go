package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// A frame shows percent, bytes done / total, and once a second of data is
// in, the rate and the ETA. The first frames show no rate at all, so a
// large first report cannot show as a spike.
func TestProgressFrames(t *testing.T) {
	var out bytes.Buffer
	clock := time.Unix(1000, 0)
	p := &progress{on: true, w: &out, width: 100, now: func() time.Time { return clock }}
	p.update("copy", 0, 400<<20)
	clock = clock.Add(300 * time.Millisecond)
	p.update("copy", 200<<20, 400<<20) // a burst: 200 MiB in 0.3 s
	frames := strings.Split(out.String(), "\r")
	for _, f := range frames {
		if strings.Contains(f, "/s") || strings.Contains(f, "ETA") {
			t.Fatalf("a rate before a second has passed: %q", f)
		}
	}
	if last := frames[len(frames)-1]; !strings.Contains(last, " 50%") || !strings.Contains(last, "200.0 MiB / 400.0 MiB") {
		t.Fatalf("frame: %q", last)
	}
	// 100 MiB/s from here on.
	for i := 1; i <= 10; i++ {
		clock = clock.Add(time.Second / 2)
		p.update("copy", 200<<20+int64(i)*50<<20, 1200<<20)
	}
	frames = strings.Split(out.String(), "\r")
	last := frames[len(frames)-1]
	if !strings.Contains(last, "MiB/s") || !strings.Contains(last, "ETA 0:") || !strings.Contains(last, "700.0 MiB / 1.2 GiB") {
		t.Fatalf("frame: %q", last)
	}
	p.done()
	if !strings.HasSuffix(out.String(), ")\n") || strings.ContainsRune(out.String(), 0x1b) {
		t.Fatalf("end of the phase: %q", out.String())
	}
	if got := progressLine("scan", 0, 0, 0, 80); got != "scan ..." {
		t.Fatalf("unknown total: %q", got)
	}
}

func TestMessageHelpers(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{plural(1, "file", "files"), "1 file"},
		{plural(0, "file", "files"), "0 files"},
		{plural(1, "directory", "directories"), "1 directory"},
		{seconds(350 * time.Millisecond), "350 ms"},
		{seconds(4200 * time.Millisecond), "4.2 s"},
		{seconds(192 * time.Second), "3m12s"},
		{exclusionRule("/pagefile.sys"), "default: page file"},
		{exclusionRule("*.tmp"), "--exclude '*.tmp'"},
		{clock(3725 * time.Second), "1:02:05"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
