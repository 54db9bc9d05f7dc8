package policy

// MatchesBucket reports whether the rule applies to some keys of bucket.
func (r *Rule) MatchesBucket(bucket string) bool { return r.matchesBucket(bucket) }
