package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/cbimg/cbimg/anyimage"
	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/locate"
	"github.com/cbimg/cbimg/mount"
	"github.com/cbimg/cbimg/restorecore"
	"github.com/cbimg/cbimg/volume"
	tea "github.com/charmbracelet/bubbletea"
)

// jobSpec is work for the live view: run does it and returns the result
// screen.
type jobSpec struct {
	title string
	what  []string // lines under the title, e.g. "from SOURCE", "to IMAGE"
	run   func(ctx context.Context, j *job) *result
}

// job is a running action. The work reports progress under mu; the view
// reads it on every tick.
type job struct {
	jobSpec
	cancel     context.CancelFunc
	cancelling bool
	finished   chan struct{}

	mu         sync.Mutex
	phase      string
	done       int64
	total      int64
	start      time.Time
	phaseStart time.Time
	warnings   []string
}

func (j *job) progress(phase string, done, total int64) {
	j.mu.Lock()
	if phase != j.phase {
		j.phase, j.phaseStart = phase, time.Now()
	}
	j.done, j.total = done, total
	j.mu.Unlock()
}

func (j *job) warn(s string) {
	j.mu.Lock()
	j.warnings = append(j.warnings, s)
	j.mu.Unlock()
}

type tickMsg struct{}

func tick() tea.Cmd {
	return tea.Tick(200*time.Millisecond, func(time.Time) tea.Msg { return tickMsg{} })
}

type jobDone struct{ res *result }

// start runs a job and switches to the live view.
func (m *Model) start(spec jobSpec) tea.Cmd {
	ctx, cancel := context.WithCancel(m.ctx)
	j := &job{jobSpec: spec, cancel: cancel, finished: make(chan struct{}), start: time.Now()}
	j.phaseStart = j.start
	m.job, m.scr = j, scRun
	ch := make(chan *result, 1)
	go func() {
		defer close(j.finished)
		defer cancel()
		r := j.run(ctx, j)
		j.mu.Lock()
		r.warnings = append(r.warnings, j.warnings...)
		j.mu.Unlock()
		ch <- r
	}()
	return tea.Batch(tick(), func() tea.Msg { return jobDone{<-ch} })
}

func (m *Model) pendingCmd() tea.Cmd {
	c := m.pending
	m.pending = nil
	return c
}

func (j *job) update(m *Model, msg tea.Msg) (tea.Model, tea.Cmd) {
	if k, ok := msg.(tea.KeyMsg); ok {
		switch k.String() {
		case "esc", "c", "ctrl+c":
			j.cancelling = true
			j.cancel()
		}
	}
	return m, nil
}

func (j *job) view(m *Model) (string, []string, string) {
	j.mu.Lock()
	phase, done, total, ps := j.phase, j.done, j.total, j.phaseStart
	warns := append([]string{}, j.warnings...)
	j.mu.Unlock()
	now := time.Now()
	body := []string{""}
	for _, w := range j.what {
		body = append(body, "  "+fitMiddle(w, m.w-4))
	}
	body = append(body, "")
	if phase == "" {
		phase = "starting"
	}
	body = append(body, "  Phase     "+phase)
	if total <= 0 && done <= 0 {
		// A phase without a size (scanning the file system, mounting).
		body = append(body, "", "  elapsed "+clock(now.Sub(j.start)))
	} else {
		pct := ""
		if total > 0 {
			pct = fmt.Sprintf(" %3d%%", done*100/total)
		}
		body = append(body, "  "+bar(done, total, m.w-10)+pct)
		line := fmt.Sprintf("  %s of %s", human(done), human(total))
		if el := now.Sub(ps); el > 500*time.Millisecond && done > 0 {
			rate := float64(done) / el.Seconds()
			line += fmt.Sprintf("   %s/s", human(int64(rate)))
			if total > done && rate > 0 {
				line += "   ETA " + clock(time.Duration(float64(total-done)/rate*float64(time.Second)))
			}
		}
		line += "   elapsed " + clock(now.Sub(j.start))
		body = append(body, line)
	}
	for _, w := range warns {
		body = append(body, "")
		for _, l := range wrap("warning: "+w, m.w-4) {
			body = append(body, "  "+l)
		}
	}
	keys := "Esc or c cancel"
	if j.cancelling {
		body = append(body, "", "  Cancelling: cleaning up...")
		keys = "cancelling..."
	}
	return j.title, body, keys
}

// result is the last screen of an action.
type result struct {
	title    string
	status   string // OK, FAILED, CANCELLED
	lines    []string
	verify   string
	warnings []string
	cmdline  []string // shell lines doing the same
	rescan   bool     // the menu must scan again (a new image, a changed target)
	back     screen   // where Enter goes: scMenu or scBrowse
	mount    *mounted
}

func (r *result) update(m *Model, msg tea.Msg) (tea.Model, tea.Cmd) {
	k, ok := msg.(tea.KeyMsg)
	if !ok {
		return m, nil
	}
	switch k.String() {
	case "enter", "esc", " ":
		if r.back == scBrowse && m.br != nil {
			m.scr = scBrowse
			return m, nil
		}
		if r.rescan {
			return m, m.rescan()
		}
		m.menu.build(m)
		m.scr = scMenu
	case "u":
		if r.mount != nil && r.mount.live {
			if err := r.mount.unmount(); err != nil {
				m.notice = "Unmount failed: " + err.Error()
			} else {
				m.notice = "Unmounted " + r.mount.point + "."
				m.dropMount(r.mount)
			}
		}
	case "q":
		return m, tea.Quit
	}
	return m, nil
}

func (r *result) view(m *Model) (string, []string, string) {
	body := []string{""}
	for _, l := range r.lines {
		for _, w := range wrap(l, m.w-4) {
			body = append(body, "  "+w)
		}
	}
	if r.verify != "" {
		body = append(body, "")
		for _, w := range wrap("Verify: "+r.verify, m.w-4) {
			body = append(body, "  "+w)
		}
	}
	for _, w := range r.warnings {
		for _, l := range wrap("warning: "+w, m.w-4) {
			body = append(body, "  "+l)
		}
	}
	if len(r.cmdline) > 0 {
		body = append(body, "", "  Same from a script:")
		for _, c := range r.cmdline {
			for _, l := range wrapCommand(c, m.w-6) {
				body = append(body, "    "+l)
			}
		}
	}
	keys := "Enter back to the menu  q quit"
	if r.back == scBrowse {
		keys = "Enter back to the files  q quit"
	}
	if r.mount != nil && r.mount.live {
		keys = "Enter menu (stays mounted)  u unmount  q quit (unmounts)"
	}
	return r.title + ": " + r.status, body, keys
}

// leftBehind names files an unsuccessful backup left at the image path.
func leftBehind(img string) []string {
	var out []string
	if _, _, ok := locate.Split(img); ok {
		if f, err := locate.Open(img); err == nil {
			f.Close()
			out = append(out, img)
		}
		return out
	}
	for _, p := range []string{img, img + ".partial", image.PartName(img, 2), image.PartName(img, 2) + ".partial"} {
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func backupJob(m *Model, p *plan) jobSpec {
	src := p.act.part.Spec
	existed := len(leftBehind(p.image)) > 0
	return jobSpec{
		title: "Backing up " + baseName(src),
		what:  []string{"from " + src, "to   " + p.image},
		run: func(ctx context.Context, j *job) *result {
			r := &result{title: "Backup", rescan: true}
			args := m.backupArgs(p)
			r.cmdline = []string{commandLine(args...) + " && " + commandLine(m.cfg.Program, "verify", p.image)}
			res, err := backupcore.Backup(ctx, backupcore.Options{
				Source: src, Image: p.image, Codec: p.codec, Level: p.level, Split: p.split,
				Excludes: p.excludes, NoDefaultExcludes: p.noDefault,
				Progress: func(pr backupcore.Progress) { j.progress(pr.Phase, pr.Done, pr.Total) },
				Warn:     j.warn,
			})
			if err != nil {
				r.status = "FAILED"
				if ctx.Err() != nil {
					r.status = "CANCELLED"
					r.lines = append(r.lines, "The backup was cancelled.")
				} else {
					r.lines = append(r.lines, err.Error())
				}
				if left := leftBehind(p.image); len(left) > 0 && !existed {
					r.lines = append(r.lines, "! left behind: "+strings.Join(left, ", "))
				} else if !existed {
					r.lines = append(r.lines, "No image was left behind: "+p.image+" does not exist.")
				}
				return r
			}
			h := res.Header
			r.lines = append(r.lines, fmt.Sprintf("Backed up %s (%s, %s of data) to %s: %s in %.1f s.",
				src, volume.Type(h.FSType), human(h.LogicalLen), p.image, human(res.ImageBytes), res.Duration.Seconds()))
			for _, x := range h.Exclusions {
				r.lines = append(r.lines, fmt.Sprintf("  left out %s (%s, %s)", x.Path, x.Reason, human(int64(x.Clusters)*int64(h.ClusterSize))))
			}
			r.status = "OK"
			r.verify = verifyFile(ctx, j, p.image)
			if !strings.HasPrefix(r.verify, "OK") {
				r.status = "IMAGE NOT VERIFIED"
			}
			return r
		},
	}
}

// verifyFile verifies a finished image and says how it went.
func verifyFile(ctx context.Context, j *job, name string) string {
	rd, err := anyimage.Open(name, nil)
	if err != nil {
		return "DAMAGED: " + err.Error()
	}
	defer rd.Close()
	return verifyReader(ctx, j, rd)
}

func verifyReader(ctx context.Context, j *job, rd anyimage.Image) string {
	total := rd.Info().VerifyBytes
	rep, err := rd.Verify(ctx, func(d int64) { j.progress("verify", d, total) })
	if err != nil {
		if ctx.Err() != nil {
			return "not done (cancelled)"
		}
		return "FAILED: " + err.Error()
	}
	if !rep.OK() {
		msgs := make([]string, 0, len(rep.Problems))
		for _, p := range rep.Problems {
			msgs = append(msgs, p.Error())
		}
		return fmt.Sprintf("DAMAGED (%d problems): %s", len(msgs), strings.Join(msgs, "; "))
	}
	s := fmt.Sprintf("OK, %d chunks, %s checked, digest matches", rep.Units, human(rep.Logical))
	switch inf := rd.Info(); {
	case inf.Format != "cbi" && rep.Checksummed:
		s = fmt.Sprintf("OK, %s image, %d %s checked, %s", inf.Format, rep.Units, rep.UnitName, human(rep.Logical))
	case inf.Format != "cbi":
		s = fmt.Sprintf("OK, %s image, %d %s read, %s; the format has no checksums: structure and stream only", inf.Format, rep.Units, rep.UnitName, human(rep.Logical))
	}
	var unread uint64
	for _, u := range rd.Header().Unreadable {
		unread += u.Count
	}
	if unread > 0 {
		s += fmt.Sprintf("; %d clusters were unreadable at backup and are stored as zeros", unread)
	}
	return s
}

func verifyJob(m *Model, img *Img) jobSpec {
	return jobSpec{
		title: "Verifying " + m.shortImage(img),
		what:  []string{img.Location},
		run: func(ctx context.Context, j *job) *result {
			r := &result{title: "Verify"}
			r.cmdline = []string{commandLine(m.cfg.Program, "verify", img.Location)}
			rd, closeFn, err := openImage(img)
			if err != nil {
				r.status, r.verify = "DAMAGED", err.Error()
				return r
			}
			defer closeFn()
			r.lines = []string{"Image " + img.Location}
			r.verify = verifyReader(ctx, j, rd)
			switch {
			case strings.HasPrefix(r.verify, "OK"):
				r.status = "OK"
			case ctx.Err() != nil:
				r.status = "CANCELLED"
			default:
				r.status = "DAMAGED"
			}
			return r
		},
	}
}

func restoreJob(m *Model, p *plan) jobSpec {
	img, tgt := p.act.img, p.act.part.Spec
	return jobSpec{
		title: "Restoring " + baseName(tgt),
		what:  []string{"from " + img.Location, "to   " + tgt},
		run: func(ctx context.Context, j *job) *result {
			r := &result{title: "Restore", rescan: true}
			if args := m.restoreArgs(p); args != nil {
				r.cmdline = []string{commandLine(args...)}
			}
			// Image is a path or PARTITION:PATH; restorecore refuses an
			// in-place restore that would touch the image's own clusters.
			opts := restorecore.Options{
				Image: img.Location, Target: tgt,
				Confirm:  func(restorecore.Plan) error { return nil }, // confirmed on the summary screen
				Progress: func(pr restorecore.Progress) { j.progress(pr.Phase, pr.Done, pr.Total) },
				Warn:     j.warn,
			}
			if img.Partition == "" {
				opts.Journal = img.Path + ".resume" // as the command line does
			}
			res, err := restorecore.Restore(ctx, opts)
			if err != nil {
				r.status = "FAILED"
				if ctx.Err() != nil {
					r.status = "CANCELLED"
				}
				r.lines = append(r.lines, err.Error())
				var we *restorecore.WriteError
				if errors.As(err, &we) {
					r.lines = append(r.lines, fmt.Sprintf("%s of image data had been written; the target will not mount until a restore completes.", human(we.Done)))
					if opts.Journal != "" {
						if _, err := os.Stat(opts.Journal); err == nil {
							r.lines = append(r.lines, "To continue where it stopped: "+commandLine(m.cfg.Program, "restore", "--resume", "--yes", img.Location, tgt))
						}
					}
				} else {
					r.lines = append(r.lines, "Nothing was written to "+tgt+".")
				}
				return r
			}
			r.status = "OK"
			r.lines = append(r.lines, fmt.Sprintf("Restored %s to %s: %s written, %s zeroed in %.1f s.",
				img.Location, tgt, human(res.Written), human(res.Zeroed), res.Duration.Seconds()))
			if res.HiddenSectors != 0 {
				r.lines = append(r.lines, fmt.Sprintf("The boot records now say the partition starts at sector %d.", res.HiddenSectors))
			}
			r.verify = "every chunk checksum was checked before the first write, and the image digest at the end: OK. " + checkTarget(tgt)
			return r
		},
	}
}

// checkTarget says what file system the restored target now holds.
func checkTarget(spec string) string {
	s, err := disk.OpenPartition(spec, false)
	if err != nil {
		return "The target could not be reopened: " + err.Error()
	}
	defer s.Close()
	v, err := volume.Open(s, s.Size())
	if err != nil {
		return "! The target's file system does not open: " + err.Error()
	}
	label := ""
	if v.Info.Label != "" {
		label = fmt.Sprintf(" %q", v.Info.Label)
	}
	return fmt.Sprintf("The target now holds %s%s, which opens.", v.Info.Type, label)
}

// mounted is an image mounted from the menu.
type mounted struct {
	img   *Img
	point string
	mt    *mount.Mounted
	close func()
	made  bool // the mount point directory was made by the menu
	live  bool
}

func (mt *mounted) unmount() error {
	if !mt.live {
		return nil
	}
	if err := mt.mt.Unmount(); err != nil {
		if err2 := mount.UnmountLazy(mt.point); err2 != nil {
			return err
		}
	}
	mt.live = false
	mt.close()
	if mt.made {
		os.Remove(mt.point)
	}
	return nil
}

func (m *Model) dropMount(x *mounted) {
	for i, mt := range m.mounts {
		if mt == x {
			m.mounts = append(m.mounts[:i], m.mounts[i+1:]...)
			return
		}
	}
}

func mountJob(m *Model, img *Img, point string) jobSpec {
	return jobSpec{
		title: "Mounting " + m.shortImage(img),
		what:  []string{"from " + img.Location, "at   " + point},
		run: func(ctx context.Context, j *job) *result {
			r := &result{title: "Mount", status: "FAILED"}
			r.cmdline = []string{commandLine(m.cfg.Program, "mount", img.Location, point), commandLine(m.cfg.Program, "umount", point)}
			j.progress("opening the image", 0, 0)
			rd, closeFn, err := openImage(img)
			if err != nil {
				r.lines = []string{err.Error()}
				return r
			}
			made := false
			if runtime.GOOS != "windows" {
				if _, err := os.Stat(point); err != nil {
					if err := os.MkdirAll(point, 0o755); err != nil {
						closeFn()
						r.lines = []string{err.Error()}
						return r
					}
					made = true
				}
			}
			j.progress("mounting", 0, 0)
			mt, err := mount.Mount(point, rd, &mount.Options{FsName: img.Location, ModTime: rd.Info().Created, Logger: log.New(io.Discard, "", 0)})
			if err != nil {
				closeFn()
				if made {
					os.Remove(point)
				}
				r.lines = []string{err.Error()}
				return r
			}
			r.status = "OK"
			raw := point + string(os.PathSeparator) + mount.FileName
			r.lines = []string{
				"The partition in " + img.Location + " is served read-only as " + raw + ".",
				"Look inside without restoring, e.g. mount -o ro,loop " + raw + " /mnt, or fsck.fat -n / ntfsls / fls on it.",
				"It stays mounted until you unmount it (u here, or from the menu) or leave cbimg ui.",
			}
			r.mount = &mounted{img: img, point: point, mt: mt, close: closeFn, made: made, live: true}
			return r
		},
	}
}
