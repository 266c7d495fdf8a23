package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress draws a bar with bytes, rate and ETA on stderr, only when stderr
// is a terminal and --quiet/--json are off.
type progress struct {
	mu    sync.Mutex
	on    bool
	bar   *progressbar.ProgressBar
	phase string
}

func newProgress(g *globalOptions) *progress {
	return &progress{on: !g.Quiet && !g.JSON && term.IsTerminal(int(os.Stderr.Fd()))}
}

func (p *progress) update(phase string, done, total int64) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil || p.phase != phase {
		if p.bar != nil {
			p.bar.Finish()
			fmt.Fprintln(os.Stderr)
		}
		p.phase = phase
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription(phase),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetWidth(30),
		)
	}
	p.bar.Set64(done)
}

func (p *progress) done() {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Finish()
		fmt.Fprintln(os.Stderr)
		p.bar = nil
	}
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
