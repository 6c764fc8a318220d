package qos

import (
	"fmt"
	"math"
	"testing"
)

type simNode struct {
	service int64   // ns per op
	freeAt  int64   // server busy until
	fin     []int64 // finish times FIFO (with admit times)
	adm     []int64
}

func (n *simNode) admit(now int64) {
	start := max(now, n.freeAt)
	n.freeAt = start + n.service
	n.fin = append(n.fin, n.freeAt)
	n.adm = append(n.adm, now)
}

func (n *simNode) complete(now int64, g *Global) {
	i := 0
	for i < len(n.fin) && n.fin[i] <= now {
		g.Observe(n.fin[i] - n.adm[i])
		i++
	}
	n.fin = n.fin[i:]
	n.adm = n.adm[i:]
}

func TestSimExplore(t *testing.T) {
	for _, C := range []int64{5000, 10000, 20000, 50000} {
		for _, step := range []int64{second / 10000, second / 1000, second / 100} {
			for _, init := range []int64{2000, 100000} {
				S := second / C
				cfg := GlobalConfig{InitialRate: init, MinRate: 100, MaxRate: 1_000_000, TargetLatency: 5 * S, MaxQueue: 1 << 30, Interval: second / 10, DiscountPermille: 1000}
				g, err := NewGlobal(cfg, 0)
				if err != nil {
					t.Fatal(err)
				}
				var vols []*Volume
				for i := 0; i < 4; i++ {
					v, _ := NewVolume(Limits{IOPS: C / 40, BurstIOPS: 1 << 30, BurstCredits: 1 << 40}, 0)
					vols = append(vols, v)
				}
				node := &simNode{service: S}
				var rates []float64
				admitted := 0
				for now := int64(0); now < 300*second; now += step {
					node.complete(now, g)
					g.Tick(now, len(node.fin))
					for k := 0; k < 100000; k++ {
						any := false
						for _, v := range vols {
							if v.Admit(now, 0, g) != Denied {
								node.admit(now)
								admitted++
								any = true
							}
						}
						if !any {
							break
						}
					}
					if now%(second/10) == 0 && now >= 100*second {
						rates = append(rates, float64(g.Rate()))
					}
				}
				var m, sd float64
				for _, r := range rates {
					m += r
				}
				m /= float64(len(rates))
				for _, r := range rates {
					sd += (r - m) * (r - m)
				}
				sd = math.Sqrt(sd / float64(len(rates)))
				fmt.Printf("C=%d step=%dus init=%d: mean %.0f (%.2f C) sd %.1f%% ewma %d (target %d) admitted/s %.0f\n", C, step/1000, init, m, m/float64(C), 100*sd/m, g.LatencyEWMA(), 5*S, float64(admitted)/300)
			}
		}
	}
}
