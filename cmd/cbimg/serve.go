package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cbimg/cbimg/anyimage"
	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/mount"
	"github.com/cbimg/cbimg/nbd"
	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newServeCommand) }

type serveOptions struct {
	NBD       string
	CacheSize string
	Overlay   string
}

func newServeCommand(g *globalOptions) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve IMAGE --nbd unix:PATH|tcp:HOST:PORT",
		Short: "Serve an image read-only over NBD (qemu, nbdcopy, nbd-client)",
		Long: `serve exports the partition held in IMAGE read-only over the Network Block
Device protocol, with the bytes a restore would write (the stored clusters and
system areas, zeros for free and excluded clusters). Any image cbimg reads
works: .cbi, partclone, ntfsclone, Clonezilla directories. Block-status
queries ("base:allocation") report the clusters the image does not hold as
holes that read as zeros, so nbdcopy and qemu-img copy only used data.

A virtual disk (VHD, VHDX, qcow2, VMDK, E01) or a raw disk file with a
partition table is exported whole under the default name, and each partition
as "partN"; DISK@N exports one partition.

The export is read-only: writes are refused with EPERM. With --overlay FILE it
takes writes, kept in FILE (copy-on-write, 4 KiB blocks; the image is never
written): serve the same image with the same FILE again to see them. With
--overlay a disk is exported whole only. Several clients may connect at once.
The URI of each export is printed on standard output (with --json one object:
{"exports": [{"uri", "export", "size"}, ...]}); serve runs until Ctrl-C or
SIGTERM. Listen on a Unix socket or on 127.0.0.1 unless
the network is trusted: NBD has no authentication here.`,
		Example: `  cbimg serve sdb1.cbi --nbd unix:/tmp/sdb1.sock
  nbdinfo --map 'nbd+unix:///?socket=/tmp/sdb1.sock'
  qemu-img convert -f raw -O qcow2 'nbd+unix:///?socket=/tmp/sdb1.sock' sdb1.qcow2
  cbimg serve disk.vhdx --nbd tcp:127.0.0.1:10809   # nbd://127.0.0.1/part2
  cbimg serve c.cbi --overlay c.overlay --nbd unix:/tmp/c.sock   # writable; c.cbi stays untouched`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), cmd.OutOrStdout(), g, o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.NBD, "nbd", "tcp:127.0.0.1:10809", "where to listen: `unix:PATH` or tcp:HOST:PORT")
	f.StringVar(&o.CacheSize, "cache-size", "64M", "memory for decompressed chunks, `SIZE` such as 256M")
	f.StringVar(&o.Overlay, "overlay", "", "make the export writable, keeping every write in `FILE` (created, or reused over the same image); the image is never written")
	return cmd
}

// refused is a refusal for safety (exit code 4) with its own message.
type refused struct{ error }

func (r refused) Unwrap() []error { return []error{r.error, errNotConfirmed} }

// listenNBD parses --nbd and listens; uri is what clients connect to,
// with {name} standing for the export name.
func listenNBD(spec string) (l net.Listener, uri string, cleanup func(), err error) {
	kind, addr, ok := strings.Cut(spec, ":")
	if !ok || addr == "" {
		return nil, "", nil, usageError{fmt.Errorf("--nbd %q: want unix:PATH or tcp:HOST:PORT", spec)}
	}
	switch kind {
	case "unix":
		if st, err := os.Lstat(addr); err == nil {
			if st.Mode()&os.ModeSocket == 0 {
				return nil, "", nil, refused{fmt.Errorf("--nbd: %s exists and is not a socket", addr)}
			}
			if c, err := net.Dial("unix", addr); err == nil {
				c.Close()
				return nil, "", nil, refused{fmt.Errorf("--nbd: %s is in use by another server", addr)}
			}
			os.Remove(addr) // stale socket of a server that is gone
		}
		l, err := net.Listen("unix", addr)
		if err != nil {
			return nil, "", nil, err
		}
		abs, err := filepath.Abs(addr)
		if err != nil {
			abs = addr
		}
		return l, "nbd+unix:///{name}?socket=" + abs, func() { os.Remove(addr) }, nil
	case "tcp":
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, "", nil, err
		}
		return l, "nbd://" + l.Addr().String() + "/{name}", func() {}, nil
	}
	return nil, "", nil, usageError{fmt.Errorf("--nbd %q: want unix:PATH or tcp:HOST:PORT", spec)}
}

// imageExport exports a partition image; block status follows its bitmap.
func imageExport(img anyimage.Image) nbd.Export {
	h := img.Header()
	always := make([]nbd.Range, 0, len(h.SysExtents))
	for _, e := range h.SysExtents {
		always = append(always, nbd.Range{Off: e.Offset, Len: e.Length})
	}
	sort.Slice(always, func(i, j int) bool { return always[i].Off < always[j].Off })
	merged := always[:0]
	for _, r := range always {
		if k := len(merged); k > 0 && r.Off <= merged[k-1].Off+merged[k-1].Len {
			merged[k-1].Len = max(merged[k-1].Len, r.Off+r.Len-merged[k-1].Off)
			continue
		}
		merged = append(merged, r)
	}
	a := &nbd.Allocation{Bitmap: img.Bitmap(), Bits: h.ClusterCount, Unit: int64(h.ClusterSize),
		Origin: h.ClusterOrigin, Always: merged}
	desc := img.Info().Format + " " + h.FSName()
	return nbd.Export{Description: desc + " partition", Size: img.Size(), Data: img,
		BlockSize: h.ClusterSize, Extents: a.Extents}
}

// diskExports exports a whole disk as "" and its partitions as "partN".
func diskExports(d *disk.Disk) []nbd.Export {
	ex := []nbd.Export{{Description: "whole disk", Size: d.Size, Data: io.NewSectionReader(d, 0, d.Size)}}
	for _, p := range d.Table.Partitions {
		if !p.IsExtended() && p.End() <= d.Size {
			ex = append(ex, nbd.Export{Name: strings.TrimSuffix(mount.PartFileName(p.Number), ".raw"),
				Description: fmt.Sprintf("partition %d", p.Number), Size: p.Length, Data: d.Section(p)})
		}
	}
	return ex
}

// openExports opens what IMAGE names as exports; the closer releases it.
func openExports(g *globalOptions, path string, cacheBytes int64) ([]nbd.Export, io.Closer, error) {
	if isVirtualDisk(path) {
		d, err := disk.OpenDisk(path)
		if err != nil {
			return nil, nil, err
		}
		return diskExports(d), d, nil
	}
	if isVirtualPartition(path) {
		s, err := disk.OpenPartition(path, false)
		if err != nil {
			return nil, nil, err
		}
		return []nbd.Export{{Description: "partition", Size: s.Size(), Data: s}}, s, nil
	}
	img, err := openAny(g, path, cacheBytes)
	if err == nil {
		return []nbd.Export{imageExport(img)}, img, nil
	}
	// Not an image: a raw disk file with a partition table serves too.
	if st, serr := os.Stat(path); serr == nil && st.Mode().IsRegular() {
		if d, derr := disk.OpenDisk(path); derr == nil {
			if len(d.Table.Partitions) > 0 {
				return diskExports(d), d, nil
			}
			d.Close()
		}
	}
	return nil, nil, err
}

func runServe(ctx context.Context, out io.Writer, g *globalOptions, o *serveOptions, path string) error {
	cacheBytes, err := parseUserSize(o.CacheSize)
	if err != nil {
		return fmt.Errorf("--cache-size: %w", err)
	}
	exports, closer, err := openExports(g, path, cacheBytes)
	if err != nil {
		return err
	}
	defer closer.Close()
	if o.Overlay != "" {
		ex := &exports[0]
		id := ""
		if img, ok := closer.(anyimage.Image); ok {
			id = img.Info().Digest
		}
		if id == "" {
			abs, _ := filepath.Abs(path)
			id = abs
		}
		ov, err := nbd.OpenOverlay(o.Overlay, ex.Data, ex.Size, id)
		if err != nil {
			if errors.Is(err, nbd.ErrOverlayMismatch) {
				return refused{err}
			}
			return err
		}
		defer ov.Close()
		ex.Data, ex.Writer, ex.Extents = ov, ov, ov.Extents(ex.Extents)
		ex.Description += " with overlay"
		exports = exports[:1]
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	l, uri, cleanup, err := listenNBD(o.NBD)
	if err != nil {
		return err
	}
	defer cleanup()
	srv := &nbd.Server{Exports: exports, Log: log.New(os.Stderr, "", log.LstdFlags)}
	if g.Quiet {
		srv.Log = log.New(io.Discard, "", 0)
	}
	type exportJSON struct {
		URI    string `json:"uri"`
		Export string `json:"export"`
		Size   int64  `json:"size"`
	}
	var js []exportJSON
	for _, e := range exports {
		u := strings.Replace(uri, "{name}", url.PathEscape(e.Name), 1)
		js = append(js, exportJSON{u, e.Name, e.Size})
		if !g.JSON && !g.Quiet {
			fmt.Fprintln(out, u)
		}
	}
	if g.JSON {
		printJSON(out, struct {
			Exports []exportJSON `json:"exports"`
		}{js})
	}
	mode := "read-only"
	if o.Overlay != "" {
		mode = "writes to " + o.Overlay
	}
	say(g, os.Stderr, "Serving %s (%s) over NBD, %s. Press Ctrl-C to stop.\n", path, human(exports[0].Size), mode)
	err = srv.Serve(ctx, l)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("nbd: %w", err)
	}
	return nil
}
