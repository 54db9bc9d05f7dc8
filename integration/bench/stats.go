package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
)

// percentile returns the p-th percentile (0 < p ≤ 100) of xs by the
// nearest-rank method: the smallest value with at least p % of the values at
// or below it. It returns NaN for no values. xs is not modified.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// spread is the minimum, median and maximum of a set of repetitions.
type spread struct {
	Min    num `json:"min"`
	Median num `json:"median"`
	Max    num `json:"max"`
	N      int `json:"n"`
}

// spreadOf returns the spread of xs, ignoring NaNs; N is the number of
// values used. The median of an even count is the mean of the middle two.
func spreadOf(xs []float64) spread {
	var s []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return spread{Min: nan, Median: nan, Max: nan}
	}
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{Min: num(s[0]), Median: num(med), Max: num(s[len(s)-1]), N: len(s)}
}

// median is spreadOf(xs).Median.
func median(xs []float64) num { return spreadOf(xs).Median }

// num is a float64 that is written to JSON as null when it is NaN or
// infinite (no value), and read back from null as NaN.
type num float64

var nan = num(math.NaN())

// ok reports whether n holds a value.
func (n num) ok() bool { return !math.IsNaN(float64(n)) && !math.IsInf(float64(n), 0) }

// MarshalJSON implements json.Marshaler.
func (n num) MarshalJSON() ([]byte, error) {
	if !n.ok() {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(n), 'g', 6, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = nan
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("bench: number %q: %w", b, err)
	}
	*n = num(f)
	return nil
}
