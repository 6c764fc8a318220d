package core

// Rand is a small deterministic PRNG (splitmix64). The core never uses global randomness:
// each node is handed its own Rand derived from the run's seed.
type Rand struct{ s uint64 }

// NewRand returns a PRNG for seed.
func NewRand(seed uint64) *Rand { return &Rand{s: seed} }

// Uint64 returns the next value.
func (r *Rand) Uint64() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Intn returns a value in [0, n); n must be > 0.
func (r *Rand) Intn(n int) int {
	if n <= 0 {
		panic("core: Intn with n <= 0")
	}
	return int(r.Uint64() % uint64(n))
}

// Int63n returns a value in [0, n); n must be > 0.
func (r *Rand) Int63n(n int64) int64 {
	if n <= 0 {
		panic("core: Int63n with n <= 0")
	}
	return int64(r.Uint64() % uint64(n))
}

// Chance returns true with probability ppm/1e6.
func (r *Rand) Chance(ppm uint32) bool { return r.Uint64()%1_000_000 < uint64(ppm) }
