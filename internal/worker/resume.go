package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/transfer"
)

// kvResumer keeps a job's multipart upload progress in the uploads bucket,
// so that a restarted worker (on any machine) continues an upload. Keys are
// JOB.HASH(dst key): bucket keys allow a narrow alphabet, object keys don't.
type kvResumer struct {
	kv  jetstream.KeyValue
	job string
}

var _ transfer.Resumer = (*kvResumer)(nil)

// UploadKey is the uploads-bucket key of a job's destination key.
func UploadKey(jobID, dstKey string) string {
	h := sha256.Sum256([]byte(dstKey))
	return job.UploadKeyPrefix(jobID) + hex.EncodeToString(h[:16])
}

func (r *kvResumer) Load(ctx context.Context, dstKey string) (transfer.UploadState, bool, error) {
	e, err := r.kv.Get(ctx, UploadKey(r.job, dstKey))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return transfer.UploadState{}, false, nil
	}
	if err != nil {
		return transfer.UploadState{}, false, fmt.Errorf("load upload state: %w", err)
	}
	var st transfer.UploadState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return transfer.UploadState{}, false, fmt.Errorf("decode upload state: %w", err)
	}
	if st.DstKey != dstKey {
		return transfer.UploadState{}, false, nil
	}
	return st, true, nil
}

func (r *kvResumer) Save(ctx context.Context, st transfer.UploadState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode upload state: %w", err)
	}
	if _, err := r.kv.Put(ctx, UploadKey(r.job, st.DstKey), b); err != nil {
		return fmt.Errorf("save upload state: %w", err)
	}
	return nil
}

func (r *kvResumer) Delete(ctx context.Context, dstKey string) error {
	err := r.kv.Delete(ctx, UploadKey(r.job, dstKey))
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete upload state: %w", err)
	}
	return nil
}
