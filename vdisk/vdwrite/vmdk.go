package vdwrite

import (
	"encoding/binary"
	"fmt"
)

// VMDK monolithicSparse after VMware's "Virtual Disk Format 5.0": a
// sparse extent header, the embedded descriptor, the grain directory,
// the grain tables in use, then 64 KiB grains.
const (
	vmdkGrainSectors = 128
	vmdkGrain        = vmdkGrainSectors * 512
	vmdkGTEs         = 512
	vmdkDescSectors  = 20
)

func writeVMDK(w *writer, src *Source, name string) error {
	le := binary.LittleEndian
	capacity := (src.Size + 511) / 512
	span := int64(vmdkGrain) * vmdkGTEs
	ngd := (capacity*512 + span - 1) / span
	gdSectors := (ngd*4 + 511) / 512
	gdOff := int64(1 + vmdkDescSectors)
	var grains []int64
	if err := blocks(src, vmdkGrain, func(b int64) error { grains = append(grains, b); return nil }); err != nil {
		return err
	}
	var gts []int64 // grain directory entries that get a table
	for _, g := range grains {
		if len(gts) == 0 || gts[len(gts)-1] != g/vmdkGTEs {
			gts = append(gts, g/vmdkGTEs)
		}
	}
	gtOff := gdOff + gdSectors
	gtSectors := int64(vmdkGTEs * 4 / 512)
	overhead := (gtOff + int64(len(gts))*gtSectors + vmdkGrainSectors - 1) / vmdkGrainSectors * vmdkGrainSectors

	if overhead*512+int64(len(grains))*vmdkGrain > 1<<41 {
		return fmt.Errorf("a monolithicSparse VMDK holds at most 2 TiB of grains (sector offsets are 32-bit)")
	}
	h := make([]byte, 512)
	copy(h, "KDMV")
	le.PutUint32(h[4:], 1)
	le.PutUint32(h[8:], 1) // valid newline test
	le.PutUint64(h[12:], uint64(capacity))
	le.PutUint64(h[20:], vmdkGrainSectors)
	le.PutUint64(h[28:], 1)
	le.PutUint64(h[36:], vmdkDescSectors)
	le.PutUint32(h[44:], vmdkGTEs)
	le.PutUint64(h[56:], uint64(gdOff))
	le.PutUint64(h[64:], uint64(overhead))
	copy(h[73:], "\n \r\n")
	if err := w.at(h, 0); err != nil {
		return err
	}
	heads, spt := int64(16), int64(63)
	cyl := min(capacity/(heads*spt), 16383)
	desc := fmt.Sprintf("# Disk DescriptorFile\nversion=1\nCID=%08x\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\n\n"+
		"# Extent description\nRW %d SPARSE %q\n\n# The Disk Data Base\n#DDB\n\n"+
		"ddb.virtualHWVersion = \"4\"\nddb.geometry.cylinders = \"%d\"\nddb.geometry.heads = \"%d\"\nddb.geometry.sectors = \"%d\"\nddb.adapterType = \"ide\"\n",
		uint32(capacity)^0x5a5a5a5a, capacity, name, cyl, heads, spt)
	db := make([]byte, vmdkDescSectors*512)
	if len(desc) > len(db) {
		return fmt.Errorf("vmdk descriptor of %d bytes", len(desc))
	}
	copy(db, desc)
	if err := w.at(db, 512); err != nil {
		return err
	}
	gd := make([]byte, gdSectors*512)
	for i, x := range gts {
		le.PutUint32(gd[4*x:], uint32(gtOff+int64(i)*gtSectors))
	}
	if err := w.at(gd, gdOff*512); err != nil {
		return err
	}
	gt := make([]byte, gtSectors*512)
	gi := 0
	for i, x := range gts {
		clear(gt)
		for gi < len(grains) && grains[gi]/vmdkGTEs == x {
			le.PutUint32(gt[4*(grains[gi]%vmdkGTEs):], uint32(overhead+int64(gi)*vmdkGrainSectors))
			gi++
		}
		if err := w.at(gt, (gtOff+int64(i)*gtSectors)*512); err != nil {
			return err
		}
	}
	buf := make([]byte, vmdkGrain)
	for i, g := range grains {
		if err := readBlock(src, buf, g); err != nil {
			return err
		}
		if err := w.at(buf, (overhead+int64(i)*vmdkGrainSectors)*512); err != nil {
			return err
		}
	}
	if len(grains) == 0 {
		return w.f.Truncate(overhead * 512)
	}
	return nil
}
