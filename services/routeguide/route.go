package routeguide

import (
	"math"
	"time"
)

// earthRadius is the mean Earth radius in metres used by the example.
const earthRadius = 6371000

// Distance is the haversine distance between p and q in metres, truncated to
// a whole number as the example does for every segment.
func Distance(p, q Point) int32 {
	// The same operations in the same order as the example, so the truncated
	// result matches it to the metre.
	radians := func(e7 int32) float64 { return float64(e7) / 1e7 * math.Pi / 180 }
	lat1, lat2 := radians(p.Latitude), radians(q.Latitude)
	dLat := lat2 - lat1
	dLng := radians(q.Longitude) - radians(p.Longitude)
	a := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1)*math.Cos(lat2)*math.Sin(dLng/2)*math.Sin(dLng/2)
	c := 2 * math.Atan2(math.Sqrt(a), math.Sqrt(1-a))
	return int32(earthRadius * c)
}

// Summary is what RecordRoute reports for a route.
type Summary struct {
	PointCount   int32
	FeatureCount int32
	// Distance is the segments' sum in int32, wrapping past 2^31-1 m as
	// the example's does; Metres is the sum itself.
	Distance    int32
	Metres      int64
	ElapsedTime int32 // whole seconds
}

// Recorder accumulates the points of one route.
type Recorder struct {
	db      *DB
	start   time.Time
	last    Point
	summary Summary
}

// NewRecorder starts recording a route against db at time start.
func NewRecorder(db *DB, start time.Time) *Recorder {
	return &Recorder{db: db, start: start}
}

// Add records the next point of the route.
func (r *Recorder) Add(p Point) {
	if r.summary.PointCount > 0 {
		d := Distance(r.last, p)
		r.summary.Distance += d
		r.summary.Metres += int64(d)
	}
	r.summary.PointCount++
	r.summary.FeatureCount += r.db.CountAt(p)
	r.last = p
}

// Finish returns the summary with the whole seconds elapsed until end.
func (r *Recorder) Finish(end time.Time) Summary {
	s := r.summary
	s.ElapsedTime = int32(end.Sub(r.start) / time.Second)
	return s
}
