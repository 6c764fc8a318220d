package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/core"
	"github.com/cairnstore/cairn/netio"
)

// joinPeers builds --peers and --authorities for a node joining a running cluster
// (--join): it asks the first admin API in join that answers for the cluster's nodes
// (GET /v1/cluster) and adds this node (id, zone, listen). A node that joined before and
// restarts is listed already: its own entry is replaced.
func joinPeers(join string, id core.Addr, zone, listen string, timeout time.Duration) (peers, authorities string, err error) {
	urls, err := parseAdminURLs(join)
	if err != nil {
		return "", "", fmt.Errorf("--join: %w", err)
	}
	var last error
	for _, u := range urls {
		cj, err := fetchCluster(u+"/v1/cluster", timeout)
		if err != nil {
			last = err
			continue
		}
		var keep []string
		for _, p := range cj.Peers {
			if !strings.HasPrefix(p, fmt.Sprintf("%d=", id)) {
				keep = append(keep, p)
			}
		}
		keep = append(keep, fmt.Sprintf("%d=%s@%s", id, zone, listen))
		var auth []string
		for _, a := range cj.Authorities {
			auth = append(auth, strconv.FormatUint(uint64(a), 10))
		}
		return strings.Join(keep, ","), strings.Join(auth, ","), nil
	}
	return "", "", fmt.Errorf("--join: no node's admin API answered (%v): give the admin address (HOST:PORT) of a running node", last)
}

func fetchCluster(url string, timeout time.Duration) (*netio.ClusterJSON, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	var cj netio.ClusterJSON
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&cj); err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	if len(cj.Peers) == 0 || len(cj.Authorities) == 0 {
		return nil, fmt.Errorf("%s: no nodes or no authority members listed", url)
	}
	return &cj, nil
}
