package volume

// ValidSize returns the stream's valid data length (the initialized size):
// bytes past it read as zeros whatever the clusters hold, so a writer that
// puts data straight into a file's clusters needs it to equal Size.
func (nf *NTFSFile) ValidSize() int64 { return int64(nf.s.initSize) }
