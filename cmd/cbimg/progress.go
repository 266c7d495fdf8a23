package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress draws one status line on stderr, only when stderr is a terminal
// and --quiet/--json are off:
//
//	write [=========>          ]  47%  1.2 GiB / 2.6 GiB  180 MiB/s  ETA 0:08
//
// It writes plain text, carriage returns and spaces only: no escape
// sequences and no queries, so a serial or WinPE console shows it as is.
// The rate is measured over the last few seconds and shown only once a
// second of data is in, so the first frame has no rate spike.
type progress struct {
	mu    sync.Mutex
	on    bool
	w     io.Writer
	width int
	now   func() time.Time

	phase   string
	total   int64
	started time.Time
	last    time.Time // last frame drawn
	samples []sample  // recent (time, done) pairs for the rate
	lastLen int
}

type sample struct {
	t    time.Time
	done int64
}

const (
	progressEvery  = 200 * time.Millisecond
	rateWindow     = 5 * time.Second
	rateMinElapsed = time.Second
)

func newProgress(g *globalOptions) *progress {
	on := !g.Quiet && !g.JSON && term.IsTerminal(int(os.Stderr.Fd()))
	width := 80
	if on {
		if w, _, err := term.GetSize(int(os.Stderr.Fd())); err == nil && w >= 40 {
			width = w
		}
	}
	return &progress{on: on, w: os.Stderr, width: width, now: time.Now}
}

func (p *progress) update(phase string, done, total int64) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if phase != p.phase {
		p.endLine()
		p.phase, p.total, p.started, p.samples, p.last = phase, total, now, nil, time.Time{}
	}
	p.total = total
	p.samples = append(p.samples, sample{now, done})
	for len(p.samples) > 2 && now.Sub(p.samples[0].t) > rateWindow {
		p.samples = p.samples[1:]
	}
	if !p.last.IsZero() && now.Sub(p.last) < progressEvery && done < total {
		return
	}
	p.last = now
	p.draw(done)
}

// rate is bytes per second over the window; 0 until a second has passed.
func (p *progress) rate() float64 {
	if len(p.samples) < 2 {
		return 0
	}
	a, b := p.samples[0], p.samples[len(p.samples)-1]
	if b.t.Sub(p.started) < rateMinElapsed || b.t.Sub(a.t) <= 0 {
		return 0
	}
	return float64(b.done-a.done) / b.t.Sub(a.t).Seconds()
}

func (p *progress) draw(done int64) {
	line := progressLine(p.phase, done, p.total, p.rate(), p.width)
	pad := ""
	if n := p.lastLen - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	fmt.Fprint(p.w, "\r"+line+pad)
	p.lastLen = len(line)
}

// progressLine formats one frame; rate 0 means "not known yet".
func progressLine(phase string, done, total int64, rate float64, width int) string {
	if total <= 0 {
		if done > 0 {
			return phase + "  " + human(done)
		}
		return phase + " ..."
	}
	pct := 0
	if total > 0 {
		pct = int(min(done*100/total, 100))
	}
	nums := fmt.Sprintf("%3d%%  %s / %s", pct, human(done), human(total))
	if rate > 0 {
		nums += fmt.Sprintf("  %s/s", human(int64(rate)))
		if left := total - done; left > 0 {
			nums += "  ETA " + clock(time.Duration(float64(left)/rate*float64(time.Second)))
		}
	}
	bar := width - len(phase) - len(nums) - 6
	if bar > 40 {
		bar = 40
	}
	if bar < 10 {
		return phase + " " + nums
	}
	fill := 0
	if total > 0 {
		fill = int(min(done*int64(bar)/total, int64(bar)))
	}
	b := strings.Repeat("=", fill)
	if fill < bar {
		b += ">" + strings.Repeat(" ", bar-fill-1)
	}
	return phase + " [" + b + "] " + nums
}

// clock is an ETA as h:mm:ss or m:ss.
func clock(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// endLine finishes the current line: the last frame stays, with the time
// the phase took.
func (p *progress) endLine() {
	if p.phase == "" || p.lastLen == 0 {
		return
	}
	if n := len(p.samples); n > 0 {
		p.draw(p.samples[n-1].done)
	}
	fmt.Fprintf(p.w, "  (%s)\n", seconds(p.now().Sub(p.started)))
	p.lastLen = 0
}

func (p *progress) done() {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLine()
	p.phase = ""
}

// say prints a human line on stdout unless quiet or JSON.
func say(g *globalOptions, w io.Writer, format string, a ...any) {
	if g.Quiet || g.JSON {
		return
	}
	fmt.Fprintf(w, format, a...)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
