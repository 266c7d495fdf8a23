package vdwrite

import "encoding/binary"

// qcow2 version 3 after qemu's docs/interop/qcow2.txt: 64 KiB clusters,
// 16-bit refcounts; header, L1 table, refcount table and blocks, L2
// tables, then the data clusters in disk order, every one with refcount 1.
const (
	qcowClusterBits = 16
	qcowCS          = 1 << qcowClusterBits
	qcowCopied      = 1 << 63
)

func writeQCOW2(w *writer, src *Source) error {
	be := binary.BigEndian
	cs := int64(qcowCS)
	per := cs / 8 // entries per L2 table
	guest := (src.Size + cs - 1) / cs
	l1n := (guest + per - 1) / per
	var data []int64 // guest clusters to store
	if err := blocks(src, cs, func(b int64) error { data = append(data, b); return nil }); err != nil {
		return err
	}
	var l2s []int64 // L1 indices that get an L2 table
	for _, c := range data {
		if len(l2s) == 0 || l2s[len(l2s)-1] != c/per {
			l2s = append(l2s, c/per)
		}
	}
	ceil := func(a, b int64) int64 { return (a + b - 1) / b }
	l1c := ceil(l1n*8, cs)
	rbn, rtc := int64(1), int64(1)
	for {
		total := 1 + l1c + rtc + rbn + int64(len(l2s)) + int64(len(data))
		nrb := ceil(total, cs/2)
		nrt := ceil(nrb*8, cs)
		if nrb == rbn && nrt == rtc {
			break
		}
		rbn, rtc = nrb, nrt
	}
	l1Off := cs
	rtOff := l1Off + l1c*cs
	rbOff := rtOff + rtc*cs
	l2Off := rbOff + rbn*cs
	dataOff := l2Off + int64(len(l2s))*cs
	total := dataOff/cs + int64(len(data))

	h := make([]byte, cs)
	copy(h, "QFI\xfb")
	be.PutUint32(h[4:], 3)
	be.PutUint32(h[20:], qcowClusterBits)
	be.PutUint64(h[24:], uint64(src.Size))
	be.PutUint32(h[36:], uint32(l1n))
	be.PutUint64(h[40:], uint64(l1Off))
	be.PutUint64(h[48:], uint64(rtOff))
	be.PutUint32(h[56:], uint32(rtc))
	be.PutUint32(h[96:], 4)    // refcount_order: 16-bit refcounts
	be.PutUint32(h[100:], 104) // header_length; the end-of-extensions marker follows
	if err := w.at(h, 0); err != nil {
		return err
	}
	l1 := make([]byte, l1c*cs)
	for i, x := range l2s {
		be.PutUint64(l1[8*x:], uint64(l2Off+int64(i)*cs)|qcowCopied)
	}
	if err := w.at(l1, l1Off); err != nil {
		return err
	}
	rt := make([]byte, rtc*cs)
	for i := range rbn {
		be.PutUint64(rt[8*i:], uint64(rbOff+i*cs))
	}
	if err := w.at(rt, rtOff); err != nil {
		return err
	}
	rb := make([]byte, cs)
	for i := range rbn {
		clear(rb)
		for j := int64(0); j < cs/2 && i*cs/2+j < total; j++ {
			be.PutUint16(rb[2*j:], 1)
		}
		if err := w.at(rb, rbOff+i*cs); err != nil {
			return err
		}
	}
	l2 := make([]byte, cs)
	di := 0
	for i, x := range l2s {
		clear(l2)
		for di < len(data) && data[di]/per == x {
			be.PutUint64(l2[8*(data[di]%per):], uint64(dataOff+int64(di)*cs)|qcowCopied)
			di++
		}
		if err := w.at(l2, l2Off+int64(i)*cs); err != nil {
			return err
		}
	}
	buf := make([]byte, cs)
	for i, c := range data {
		if err := readBlock(src, buf, c); err != nil {
			return err
		}
		if err := w.at(buf, dataOff+int64(i)*cs); err != nil {
			return err
		}
	}
	return nil
}
