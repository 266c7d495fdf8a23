package restorecore

// SetJournalEvery lets tests sync and record progress more often.
func SetJournalEvery(n int64) { journalEvery = n }
