//go:build linux

package disk_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/disk/disktest"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/volume"
)

func readTable(t *testing.T, path string, ss int) (*disk.Table, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return disk.ReadTable(f, st.Size(), ss)
}

func mustTable(t *testing.T, path string) *disk.Table {
	t.Helper()
	tab, err := readTable(t, path, 0)
	if err != nil {
		t.Fatalf("ReadTable(%s): %v", path, err)
	}
	return tab
}

// compareSfdisk checks every partition against sfdisk --json.
func compareSfdisk(t *testing.T, tab *disk.Table, j *disktest.SfdiskTable) {
	t.Helper()
	if len(tab.Partitions) != len(j.Partitions) {
		t.Fatalf("%d partitions, sfdisk shows %d", len(tab.Partitions), len(j.Partitions))
	}
	if tab.SectorSize != j.SectorSize {
		t.Errorf("sector size %d, sfdisk %d", tab.SectorSize, j.SectorSize)
	}
	ss := int64(j.SectorSize)
	for i, p := range tab.Partitions {
		q := j.Partitions[i]
		if p.Number != q.Number() || p.Start != q.Start*ss || p.Length != q.Size*ss {
			t.Errorf("partition %d at %d+%d; sfdisk: %d at %d+%d", p.Number, p.Start, p.Length, q.Number(), q.Start*ss, q.Size*ss)
		}
		switch tab.Scheme {
		case disk.MBR:
			typ, _ := strconv.ParseUint(q.Type, 16, 8)
			if p.MBRType != byte(typ) || p.Bootable != q.Bootable {
				t.Errorf("partition %d: type %#x bootable %v; sfdisk %s %v", p.Number, p.MBRType, p.Bootable, q.Type, q.Bootable)
			}
		case disk.GPT:
			if disk.GUIDString(p.TypeGUID) != q.Type || disk.GUIDString(p.GUID) != q.UUID || p.Name != q.Name {
				t.Errorf("partition %d: %s %s %q; sfdisk %s %s %q", p.Number, disk.GUIDString(p.TypeGUID), disk.GUIDString(p.GUID), p.Name, q.Type, q.UUID, q.Name)
			}
		}
	}
}

// comparePartx checks numbers and sector ranges against partx --show.
func comparePartx(t *testing.T, tab *disk.Table, path string) {
	t.Helper()
	out := testvol.Run(t, "partx", "--show", "-g", "-o", "NR,START,END", path)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(tab.Partitions) {
		t.Fatalf("partx shows %d partitions, ReadTable %d:\n%s", len(lines), len(tab.Partitions), out)
	}
	ss := int64(tab.SectorSize)
	for i, l := range lines {
		f := strings.Fields(l)
		n, _ := strconv.Atoi(f[0])
		s, _ := strconv.ParseInt(f[1], 10, 64)
		e, _ := strconv.ParseInt(f[2], 10, 64)
		p := tab.Partitions[i]
		if p.Number != n || p.Start != s*ss || p.End() != (e+1)*ss {
			t.Errorf("partx: %d %d-%d; ReadTable %d %d-%d", n, s*ss, (e+1)*ss, p.Number, p.Start, p.End())
		}
	}
}

// checkVolumes opens every formatted partition and checks its file system
// and label.
func checkVolumes(t *testing.T, img string, parts []disktest.Part) {
	t.Helper()
	for _, want := range parts {
		if want.FS == "" {
			continue
		}
		sec, err := disk.OpenPartition(img+"@"+strconv.Itoa(want.Number), false)
		if err != nil {
			t.Fatalf("OpenPartition %d: %v", want.Number, err)
		}
		vol, err := volume.Open(sec, sec.Size())
		if err != nil {
			sec.Close()
			t.Fatalf("partition %d: %v", want.Number, err)
		}
		if vol.Info.Type.String() != want.FS || vol.Info.Label != want.Label {
			t.Errorf("partition %d: %s %q, want %s %q", want.Number, vol.Info.Type, vol.Info.Label, want.FS, want.Label)
		}
		if vol.Info.HiddenSectors*512 != uint64(sec.Partition.Start) {
			t.Errorf("partition %d: hidden sectors %d, start %d", want.Number, vol.Info.HiddenSectors, sec.Partition.Start)
		}
		if _, err := vol.Bitmap(); err != nil {
			t.Errorf("partition %d: bitmap: %v", want.Number, err)
		}
		sec.Close()
	}
}

func TestMBR(t *testing.T) {
	img := disktest.MBR(t)
	tab := mustTable(t, img)
	if tab.Scheme != disk.MBR || len(tab.Warnings) != 0 {
		t.Fatalf("scheme %v, warnings %q", tab.Scheme, tab.Warnings)
	}
	j := disktest.SfdiskJSON(t, img)
	compareSfdisk(t, tab, j)
	comparePartx(t, tab, img)
	if id, _ := strconv.ParseUint(strings.TrimPrefix(j.ID, "0x"), 16, 32); uint32(id) != tab.DiskID {
		t.Errorf("disk id %08x, sfdisk %s", tab.DiskID, j.ID)
	}
	p3, _ := tab.Partition(3)
	if !p3.IsExtended() || p3.TypeName() != "Extended" {
		t.Errorf("partition 3: %+v", p3)
	}
	if p1, _ := tab.Partition(1); !p1.Bootable || p1.TypeName() != "HPFS/NTFS/exFAT" || p1.TypeString() != "0x07" {
		t.Errorf("partition 1: %+v %q", p1, p1.TypeName())
	}
	checkVolumes(t, img, disktest.MBRParts)
	for _, n := range []int{3, 4, 7} {
		if _, err := disk.OpenPartition(img+"@"+strconv.Itoa(n), false); !errors.Is(err, disk.ErrNoPartition) {
			t.Errorf("partition %d: %v", n, err)
		}
	}
}

func TestGPT(t *testing.T) {
	img := disktest.GPT(t)
	tab := mustTable(t, img)
	if tab.Scheme != disk.GPT || tab.SectorSize != 512 || len(tab.Warnings) != 0 {
		t.Fatalf("scheme %v sector %d, warnings %q", tab.Scheme, tab.SectorSize, tab.Warnings)
	}
	j := disktest.SfdiskJSON(t, img)
	compareSfdisk(t, tab, j)
	comparePartx(t, tab, img)
	if disk.GUIDString(tab.DiskGUID) != j.ID {
		t.Errorf("disk GUID %s, sfdisk %s", disk.GUIDString(tab.DiskGUID), j.ID)
	}
	// sgdisk -p: number, start, end, size, unit, code, name.
	out := testvol.Run(t, "sgdisk", "-p", img)
	_, rows, ok := strings.Cut(out, "Code  Name\n")
	if !ok {
		t.Fatalf("sgdisk -p:\n%s", out)
	}
	var n int
	for _, l := range strings.Split(strings.TrimSpace(rows), "\n") {
		f := strings.Fields(l)
		num, _ := strconv.Atoi(f[0])
		start, _ := strconv.ParseInt(f[1], 10, 64)
		p, ok := tab.Partition(num)
		name := strings.Join(f[6:], " ") // sgdisk -p shortens long names with "..."
		if !ok || p.Start != start*512 || !strings.HasPrefix(p.Name, strings.TrimSuffix(name, "...")) {
			t.Errorf("sgdisk: %q; ReadTable %+v", l, p)
		}
		n++
		// sgdisk -i N: full name, unique GUID, type GUID, last sector.
		info := testvol.Run(t, "sgdisk", "-i", f[0], img)
		for _, want := range []string{
			"Partition GUID code: " + disk.GUIDString(p.TypeGUID),
			"Partition unique GUID: " + disk.GUIDString(p.GUID),
			"Last sector: " + strconv.FormatInt(p.End()/512-1, 10),
			"Partition name: '" + p.Name + "'",
		} {
			if !strings.Contains(info, want) {
				t.Errorf("sgdisk -i %d lacks %q:\n%s", num, want, info)
			}
		}
	}
	if n != len(tab.Partitions) {
		t.Errorf("sgdisk lists %d partitions, ReadTable %d", n, len(tab.Partitions))
	}
	for i, want := range []string{"EFI System", "Microsoft reserved", "Microsoft basic data", "Linux filesystem"} {
		if got := tab.Partitions[i].TypeName(); got != want {
			t.Errorf("partition %d type name %q, want %q", i+1, got, want)
		}
	}
	checkVolumes(t, img, disktest.GPTParts)
}

// The friendly names are util-linux's: check them against sfdisk's list.
func TestGPTTypeNames(t *testing.T) {
	out := testvol.Run(t, "sfdisk", "--list-types", "--label", "gpt")
	names := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if g, name, ok := strings.Cut(strings.TrimSpace(l), "  "); ok && len(g) == 36 {
			names[g] = strings.TrimSpace(name)
		}
	}
	var p disk.Partition
	p.Scheme = disk.GPT
	checked := 0
	for g, want := range names {
		var err error
		if p.TypeGUID, err = disk.ParseGUID(g); err != nil {
			t.Fatal(err)
		}
		if got := p.TypeName(); got != "" {
			checked++
			if got != want {
				t.Errorf("%s: %q, sfdisk %q", g, got, want)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d names checked", checked)
	}
}

func patch(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestGPTBackup(t *testing.T) {
	good := disktest.GPT(t)
	want := mustTable(t, good)
	fi, _ := os.Stat(good)
	last := fi.Size() - 512
	for _, c := range []struct {
		name    string
		offsets []int64
		warn    string // "" = error expected
	}{
		{"primary header", []int64{512 + 60}, "primary GPT damaged"},
		{"primary signature", []int64{512}, "primary GPT damaged"},
		{"primary entries", []int64{1024 + 2*128 + 60}, "primary GPT damaged"},
		{"backup header", []int64{last + 60}, "backup GPT damaged"},
		{"backup entries", []int64{last - 32*512 + 10}, "backup GPT damaged"},
		{"both headers", []int64{512 + 60, last + 60}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := testvol.Copy(t, good)
			for _, off := range c.offsets {
				patch(t, img, off, []byte{0x5a})
			}
			tab, err := readTable(t, img, 0)
			if c.warn == "" {
				if !errors.Is(err, disk.ErrFormat) || !errors.Is(err, volume.ErrCorrupt) {
					t.Fatalf("both copies damaged: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], c.warn) {
				t.Fatalf("warnings %q, want %q", tab.Warnings, c.warn)
			}
			if len(tab.Partitions) != len(want.Partitions) {
				t.Fatalf("%d partitions, want %d", len(tab.Partitions), len(want.Partitions))
			}
			for i := range tab.Partitions {
				if tab.Partitions[i] != want.Partitions[i] {
					t.Errorf("partition %+v, want %+v", tab.Partitions[i], want.Partitions[i])
				}
			}
		})
	}
}

// ebrs returns the sectors of the EBR chain of the MBR test disk.
func ebrs(t *testing.T, img string) (base int64, chain []int64) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := make([]byte, 512)
	f.ReadAt(s, 0)
	base = int64(binary.LittleEndian.Uint32(s[446+2*16+8:])) // partition 3
	for cur := base; ; {
		chain = append(chain, cur)
		f.ReadAt(s, cur*512)
		rel := int64(binary.LittleEndian.Uint32(s[446+16+8:]))
		if s[446+16+4] == 0 {
			return base, chain
		}
		cur = base + rel
	}
}

func TestEBRLoop(t *testing.T) {
	good := disktest.MBR(t)
	base, chain := ebrs(t, good)
	if len(chain) != 2 {
		t.Fatalf("EBR chain %v", chain)
	}
	for _, c := range []struct {
		name string
		ebr  int64 // EBR whose link is rewritten
		to   int64 // link target, relative to the extended partition
		want string
	}{
		{"self", chain[1], chain[1] - base, "loops back"},
		{"to first", chain[1], 0, "outside extended partition"},
		{"past end", chain[0], 1 << 30, "outside extended partition"},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := testvol.Copy(t, good)
			link := make([]byte, 16)
			link[4] = 0x05
			binary.LittleEndian.PutUint32(link[8:], uint32(c.to))
			binary.LittleEndian.PutUint32(link[12:], 2048)
			patch(t, img, c.ebr*512+446+16, link)
			done := make(chan error, 1)
			go func() { _, err := readTable(t, img, 0); done <- err }()
			select {
			case err := <-done:
				if !errors.Is(err, disk.ErrFormat) || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("got %v, want %q", err, c.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("ReadTable hangs on an EBR loop")
			}
		})
	}
}

// A chain longer than the cap, hand-built: empty EBRs that each link to
// the next sector.
func TestEBRChainCap(t *testing.T) {
	const n = 300
	b := make([]byte, (n+2)*512)
	put := func(sector int, slot int, typ byte, lba, count uint32) {
		e := b[sector*512+446+16*slot:]
		e[4] = typ
		binary.LittleEndian.PutUint32(e[8:], lba)
		binary.LittleEndian.PutUint32(e[12:], count)
		b[sector*512+510], b[sector*512+511] = 0x55, 0xAA
	}
	put(0, 0, 0x05, 1, n+1)
	for i := 1; i <= n; i++ {
		put(i, 1, 0x05, uint32(i), 1)
	}
	_, err := disk.ReadTable(bytes.NewReader(b), int64(len(b)), 512)
	if !errors.Is(err, disk.ErrFormat) || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("got %v", err)
	}
}

func TestRealMBRDisk(t *testing.T) {
	img := testvol.Real(t, "ntfs/win10-mbr-disk-lastaccess.raw")
	tab := mustTable(t, img)
	compareSfdisk(t, tab, disktest.SfdiskJSON(t, img))
	comparePartx(t, tab, img)
	p, ok := tab.Partition(1)
	if tab.Scheme != disk.MBR || len(tab.Partitions) != 1 || !ok || p.Start != 128*512 || p.MBRType != 0x07 {
		t.Fatalf("table %+v", tab)
	}
	sec, err := disk.OpenPartition(img+"@1", false)
	if err != nil {
		t.Fatal(err)
	}
	defer sec.Close()
	vol, err := volume.Open(sec, sec.Size())
	if err != nil {
		t.Fatal(err)
	}
	if vol.Info.Type != volume.NTFS || vol.Info.HiddenSectors != 128 {
		t.Fatalf("volume %+v", vol.Info)
	}
	// The section gives the same bytes as testvol's own extraction.
	want, err := os.ReadFile(testvol.Real(t, "ntfs/win10-mbr-disk-lastaccess.raw@1"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.NewSectionReader(sec, 0, sec.Size()+1))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("section bytes differ from the partition (%d vs %d bytes, %v)", len(got), len(want), err)
	}
}

// A bare volume and a blank disk have no table.
func TestNoTable(t *testing.T) {
	for _, rel := range []string{"ntfs/win10-test-ntfs.dd", "fat/mkfs-fat16-lfn.img", "fat/mkfs-fat32-2048-byte-sectors.raw"} {
		tab := mustTable(t, testvol.Real(t, rel))
		if tab.Scheme != disk.None || len(tab.Partitions) != 0 || len(tab.Warnings) != 0 {
			t.Errorf("%s: %+v", rel, tab)
		}
		if _, err := disk.OpenPartition(testvol.Real(t, rel)+"@1", false); !errors.Is(err, disk.ErrNoPartition) {
			t.Errorf("%s@1: %v", rel, err)
		}
	}
	tab, err := disk.ReadTable(bytes.NewReader(make([]byte, 1<<20)), 1<<20, 0)
	if err != nil || tab.Scheme != disk.None {
		t.Fatalf("blank: %+v %v", tab, err)
	}
	// A short read is an error, not "no table".
	if _, err := disk.ReadTable(bytes.NewReader(make([]byte, 100)), 1<<20, 0); err == nil {
		t.Fatal("short read accepted")
	}
}

func TestSectionBounds(t *testing.T) {
	img := disktest.MBR(t)
	before, _ := os.ReadFile(img)
	sec, err := disk.OpenPartition(img+"@2", true)
	if err != nil {
		t.Fatal(err)
	}
	defer sec.Close()
	size, start := sec.Size(), sec.Partition.Start
	if sec.Regular || sec.Start() != start || size != 40<<20 {
		t.Fatalf("section %+v", sec)
	}
	buf := make([]byte, 20)
	if n, err := sec.ReadAt(buf, size-10); n != 10 || err != io.EOF {
		t.Fatalf("read across the end: %d %v", n, err)
	}
	if n, err := sec.ReadAt(buf, size); n != 0 || err != io.EOF {
		t.Fatalf("read at the end: %d %v", n, err)
	}
	if _, err := sec.ReadAt(buf, -1); err == nil {
		t.Fatal("negative offset read")
	}
	for _, off := range []int64{size - 10, size, -1, 1 << 62} {
		if n, err := sec.WriteAt(bytes.Repeat([]byte{0xee}, 20), off); n != 0 || !errors.Is(err, disk.ErrOutOfRange) {
			t.Fatalf("write at %d: %d %v", off, n, err)
		}
	}
	if err := sec.Truncate(1 << 20); err == nil {
		t.Fatal("a partition was truncated")
	}
	if _, err := sec.WriteAt([]byte("last"), size-4); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(img)
	copy(before[start+size-4:], "last")
	if !bytes.Equal(before, after) {
		t.Fatal("writes reached bytes outside the partition")
	}
	// A plain path opened for writing is created and may grow.
	plain := filepath.Join(t.TempDir(), "new")
	p, err := disk.OpenPartition(plain, true)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !p.Regular || p.Size() != 0 || p.Table != nil || len(p.Devices) != 1 {
		t.Fatalf("plain %+v", p)
	}
	if err := p.Truncate(4096); err != nil || p.Size() != 4096 {
		t.Fatalf("truncate: %v %d", err, p.Size())
	}
	// A missing disk is not created.
	if _, err := disk.OpenPartition(filepath.Join(t.TempDir(), "none.img@1"), true); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("missing disk: %v", err)
	}
}

// Writing to a partition that overlaps another is refused; reading is not.
func TestOverlapRefusedForWrite(t *testing.T) {
	img := disktest.MBR(t)
	// Grow partition 1 into partition 2.
	j := disktest.SfdiskJSON(t, img)
	p1, _ := j.Part(1)
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, uint32(p1.Size+4096))
	patch(t, img, 446+12, b)
	tab := mustTable(t, img)
	if len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], "partitions 1 and 2 overlap") {
		t.Fatalf("warnings %q", tab.Warnings)
	}
	if _, err := disk.OpenPartition(img+"@2", true); !errors.Is(err, disk.ErrOutOfRange) {
		t.Fatalf("write open of an overlapping partition: %v", err)
	}
	sec, err := disk.OpenPartition(img+"@2", false)
	if err != nil {
		t.Fatal(err)
	}
	sec.Close()
	if sec, err := disk.OpenPartition(img+"@5", true); err != nil {
		t.Fatal(err)
	} else {
		sec.Close()
	}
}

// attach attaches img to a loop device with partition scanning and waits
// until the kernel lists the partitions.
func attach(t *testing.T, img string, parts int, extra ...string) string {
	t.Helper()
	loop := strings.TrimSpace(testvol.Run(t, "losetup", append(extra, "-P", "--show", "-f", img)...))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	name := filepath.Base(loop)
	count := func() int {
		m, _ := filepath.Glob("/sys/block/" + name + "/" + name + "p*")
		return len(m)
	}
	for i := 0; i < 40 && count() < parts; i++ {
		if i == 10 {
			exec.Command("partx", "-a", loop).Run()
		}
		time.Sleep(50 * time.Millisecond)
	}
	if count() < parts {
		t.Fatalf("the kernel shows %d partitions of %s, want %d", count(), loop, parts)
	}
	return loop
}

func TestLoopDevices(t *testing.T) {
	testvol.Need(t, "losetup", "partx")
	img := disktest.MBR(t)
	loop := attach(t, img, 5)
	for _, spec := range []string{img + "@5", loop + "@5"} {
		sec, err := disk.OpenPartition(spec, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(sec.Devices) != 1 || sec.Devices[0] != loop+"p5" || sec.Table.SectorSize != 512 {
			t.Errorf("%s: devices %q, sector size %d", spec, sec.Devices, sec.Table.SectorSize)
		}
		vol, err := volume.Open(sec, sec.Size())
		if err != nil || vol.Info.Label != "LOGFAT16" {
			t.Errorf("%s: %v", spec, err)
		}
		sec.Close()
	}
	// A loop device over exactly one partition stands for it too.
	p, _ := mustTable(t, img).Partition(6)
	one := strings.TrimSpace(testvol.Run(t, "losetup", "--show", "-f", "-o", strconv.FormatInt(p.Start, 10), "--sizelimit", strconv.FormatInt(p.Length, 10), img))
	t.Cleanup(func() { exec.Command("losetup", "-d", one).Run() })
	sec, err := disk.OpenPartition(img+"@6", false)
	if err != nil {
		t.Fatal(err)
	}
	sec.Close()
	if strings.Join(sec.Devices, " ") != loop+"p6 "+one && strings.Join(sec.Devices, " ") != one+" "+loop+"p6" {
		t.Errorf("devices of partition 6: %q", sec.Devices)
	}
}

// A disk with 4096-byte sectors: sgdisk writes the GPT through a loop
// device with 4 KiB logical sectors; the image file is then read with the
// sector size found from the GPT header's position.
func TestGPT4KSectors(t *testing.T) {
	testvol.Need(t, "losetup", "sgdisk", "partx")
	img := filepath.Join(t.TempDir(), "4k.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Truncate(img, 64<<20)
	loop := attach(t, img, 0, "--sector-size", "4096")
	testvol.Run(t, "sgdisk", "-n", "1:0:+16M", "-t", "1:0700", "-c", "1:data", "-n", "2:0:0", "-t", "2:8300", loop)
	exec.Command("partx", "-u", loop).Run()
	tab := mustTable(t, img)
	if tab.SectorSize != 4096 || tab.Scheme != disk.GPT {
		t.Fatalf("table %+v", tab)
	}
	compareSfdisk(t, tab, disktest.SfdiskJSON(t, loop))
	if n, err := disk.SectorSize(loop); err != nil || n != 4096 {
		t.Fatalf("SectorSize(%s) = %d, %v", loop, n, err)
	}
	sec, err := disk.OpenPartition(loop+"@1", false)
	if err != nil {
		t.Fatal(err)
	}
	defer sec.Close()
	if sec.Partition.Start != tab.Partitions[0].Start || sec.Table.SectorSize != 4096 {
		t.Fatalf("via the loop device: %+v", sec.Partition)
	}
	// Read with the wrong sector size, the disk has no valid table.
	if _, err := readTable(t, img, 512); err == nil {
		t.Fatal("GPT of a 4K disk read with 512-byte sectors")
	}
}
