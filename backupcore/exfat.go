package backupcore

import "github.com/cbimg/cbimg/volume"

// exfatState warns about what only exFAT records: read errors the driver
// met (MediaFailure) and a damaged backup boot region.
func exfatState(vol *volume.Volume, warn func(string, ...any)) {
	x := vol.ExFAT()
	if x == nil {
		return
	}
	if x.Boot().MediaFailure() {
		warn("the exFAT volume's MediaFailure flag is set: a driver met read errors on this medium; if the backup fails on bad sectors, use --rescue")
	}
	if err := x.BackupBootError(); err != nil {
		warn("the exFAT backup boot region is damaged (%v): the image copies it as it is; the main boot region is intact", err)
	}
}
