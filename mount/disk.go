package mount

// DiskFileName is the whole disk in a disk mount; its partitions are
// PartFileName(n).
const DiskFileName = "disk.raw"

// PartFileName names partition n's file in a disk mount: "part2.raw".
func PartFileName(n int) string { return "part" + itoa(n) + ".raw" }

func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// Named is one read-only file of a disk mount.
type Named struct {
	Name string
	Src  Source
}
