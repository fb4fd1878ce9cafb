package gosdk_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/milvusclient"
	"github.com/milvus-io/milvus/pkg/v2/util/merr"
)

const (
	// connectTimeout bounds how long the SDK may take to reach the server; the
	// SDK dials with grpc.WithBlock, so an unreachable server surfaces as a
	// deadline error and the test fails instead of hanging.
	connectTimeout = 10 * time.Second
	// testTimeout bounds the whole scenario against a live server.
	testTimeout = 2 * time.Minute

	vecDim       = 32
	titleMaxLen  = 256
	shardsNum    = 2
	partitionP1  = "p1"
	defaultPart  = "_default"
	rowCountStat = "row_count"
)

// serverAddr is the Weir address under test, overridable with WEIR_ADDR.
func serverAddr() string {
	if addr := os.Getenv("WEIR_ADDR"); addr != "" {
		return addr
	}
	return "localhost:19530"
}

// connect opens an SDK client the way a user's program does and closes it
// when the test ends.
func connect(t *testing.T) *milvusclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	addr := serverAddr()
	c, err := milvusclient.New(ctx, &milvusclient.ClientConfig{Address: addr})
	require.NoError(t, err, "Weir not reachable at %s within %s (set WEIR_ADDR)", addr, connectTimeout)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
		defer cancel()
		require.NoError(t, c.Close(ctx))
	})
	return c
}

// uniqueName returns a valid collection name that no earlier run used, so
// runs against a long-lived server do not collide.
func uniqueName(prefix string) string {
	return prefix + "_" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// dropAtCleanup drops the collection when the test ends, best effort, so a failed
// run leaves nothing behind on a long-lived server; tests that drop on purpose
// assert that drop themselves.
func dropAtCleanup(t *testing.T, c *milvusclient.Client, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
		defer cancel()
		_ = c.DropCollection(ctx, milvusclient.NewDropCollectionOption(name))
	})
}

// step is one stage of a test that walks a collection through calls in order.
type step struct {
	name string
	run  func(t *testing.T)
}

// runSteps runs steps as subtests and stops at the first failure, because each
// step depends on the ones before it.
func runSteps(t *testing.T, steps []step) {
	t.Helper()
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.FailNow()
		}
	}
}

// fieldSpec describes one field of the test schema so that variants (other
// dim, no vector, no primary key) differ from the base in exactly one place.
type fieldSpec struct {
	withPK     bool
	withVector bool
	dim        int64
}

var baseSpec = fieldSpec{withPK: true, withVector: true, dim: vecDim}

// newSchema builds a fresh schema per call because the SDK's create option
// mutates the schema it is given (it overwrites the name).
func newSchema(name string, spec fieldSpec) *entity.Schema {
	id := entity.NewField().WithName("id").WithDataType(entity.FieldTypeInt64)
	if spec.withPK {
		id = id.WithIsPrimaryKey(true)
	}
	s := entity.NewSchema().WithName(name).WithDescription("weir go sdk compat").WithField(id)
	if spec.withVector {
		s = s.WithField(entity.NewField().WithName("vec").WithDataType(entity.FieldTypeFloatVector).WithDim(spec.dim))
	}
	return s.
		WithField(entity.NewField().WithName("title").WithDataType(entity.FieldTypeVarChar).WithMaxLength(titleMaxLen)).
		WithField(entity.NewField().WithName("score").WithDataType(entity.FieldTypeFloat))
}

func createOption(name string, spec fieldSpec) milvusclient.CreateCollectionOption {
	return milvusclient.NewCreateCollectionOption(name, newSchema(name, spec)).WithShardNum(shardsNum)
}

// requireMentions asserts err is a Milvus error whose message (the server's
// Status.Reason) names the reason for the rejection.
func requireMentions(t *testing.T, err error, want string) {
	t.Helper()
	require.Error(t, err)
	require.Contains(t, strings.ToLower(err.Error()), strings.ToLower(want))
}

func requireHas(ctx context.Context, t *testing.T, c *milvusclient.Client, name string, want bool) {
	t.Helper()
	has, err := c.HasCollection(ctx, milvusclient.NewHasCollectionOption(name))
	require.NoError(t, err)
	require.Equal(t, want, has, "HasCollection(%q)", name)
}

func requireDescribedAsCreated(t *testing.T, coll *entity.Collection, name string) {
	t.Helper()
	require.Equal(t, name, coll.Name)
	require.NotZero(t, coll.ID, "collection id")
	require.Equal(t, int32(shardsNum), coll.ShardNum)
	require.Len(t, coll.VirtualChannels, shardsNum, "one virtual channel per shard")
	require.Equal(t, entity.ClBounded, coll.ConsistencyLevel, "SDK default consistency level must round-trip")

	s := coll.Schema
	require.NotNil(t, s)
	require.Equal(t, name, s.CollectionName)
	require.Equal(t, "weir go sdk compat", s.Description)
	require.False(t, s.AutoID)

	wantFields := []struct {
		name string
		typ  entity.FieldType
	}{
		{"id", entity.FieldTypeInt64},
		{"vec", entity.FieldTypeFloatVector},
		{"title", entity.FieldTypeVarChar},
		{"score", entity.FieldTypeFloat},
	}
	require.Len(t, s.Fields, len(wantFields))
	ids := make(map[int64]string, len(s.Fields))
	for i, want := range wantFields {
		got := s.Fields[i]
		require.Equal(t, want.name, got.Name, "field %d name", i)
		require.Equal(t, want.typ, got.DataType, "field %s type", want.name)
		require.Equal(t, want.name == "id", got.PrimaryKey, "field %s primary key flag", want.name)
		require.False(t, got.AutoID, "field %s auto id", want.name)
		prev, dup := ids[got.ID]
		require.False(t, dup, "fields %s and %s share id %d", prev, got.Name, got.ID)
		ids[got.ID] = got.Name
	}

	require.NotNil(t, s.PKField(), "described schema must mark a primary key")
	require.Equal(t, "id", s.PKFieldName())

	dim, err := s.Fields[1].GetDim()
	require.NoError(t, err)
	require.Equal(t, int64(vecDim), dim)
	require.Equal(t, strconv.Itoa(titleMaxLen), s.Fields[2].TypeParams[entity.TypeParamMaxLength])
}

// TestCollectionLifecycle walks one collection through the DDL calls a user's
// program makes, asserting Milvus's observable behaviour at every step.
func TestCollectionLifecycle(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	name := uniqueName("weir_compat")
	dropAtCleanup(t, c, name)

	steps := []step{
		{"create", func(t *testing.T) {
			require.NoError(t, c.CreateCollection(ctx, createOption(name, baseSpec)))
		}},
		{"has collection", func(t *testing.T) {
			requireHas(ctx, t, c, name, true)
		}},
		{"list collections", func(t *testing.T) {
			names, err := c.ListCollections(ctx, milvusclient.NewListCollectionOption())
			require.NoError(t, err)
			require.Contains(t, names, name)
		}},
		{"describe round-trips schema", func(t *testing.T) {
			coll, err := c.DescribeCollection(ctx, milvusclient.NewDescribeCollectionOption(name))
			require.NoError(t, err)
			requireDescribedAsCreated(t, coll, name)
		}},
		{"create again with identical schema succeeds", func(t *testing.T) {
			require.NoError(t, c.CreateCollection(ctx, createOption(name, baseSpec)))
		}},
		{"create again with different schema is rejected", func(t *testing.T) {
			err := c.CreateCollection(ctx, createOption(name, fieldSpec{withPK: true, withVector: true, dim: 2 * vecDim}))
			requireMentions(t, err, "duplicate collection")

			// The rejected request must not have altered the stored collection.
			coll, err := c.DescribeCollection(ctx, milvusclient.NewDescribeCollectionOption(name))
			require.NoError(t, err)
			requireDescribedAsCreated(t, coll, name)
		}},
		{"create partition", func(t *testing.T) {
			require.NoError(t, c.CreatePartition(ctx, milvusclient.NewCreatePartitionOption(name, partitionP1)))
		}},
		{"list partitions", func(t *testing.T) {
			parts, err := c.ListPartitions(ctx, milvusclient.NewListPartitionOption(name))
			require.NoError(t, err)
			require.ElementsMatch(t, []string{defaultPart, partitionP1}, parts)
		}},
		{"has partition", func(t *testing.T) {
			has, err := c.HasPartition(ctx, milvusclient.NewHasPartitionOption(name, partitionP1))
			require.NoError(t, err)
			require.True(t, has)
		}},
		{"drop partition", func(t *testing.T) {
			require.NoError(t, c.DropPartition(ctx, milvusclient.NewDropPartitionOption(name, partitionP1)))
			has, err := c.HasPartition(ctx, milvusclient.NewHasPartitionOption(name, partitionP1))
			require.NoError(t, err)
			require.False(t, has)
			parts, err := c.ListPartitions(ctx, milvusclient.NewListPartitionOption(name))
			require.NoError(t, err)
			require.Equal(t, []string{defaultPart}, parts)
		}},
		{"collection stats of empty collection", func(t *testing.T) {
			stats, err := c.GetCollectionStats(ctx, milvusclient.NewGetCollectionStatsOption(name))
			require.NoError(t, err)
			require.Equal(t, "0", stats[rowCountStat])
		}},
		{"drop collection", func(t *testing.T) {
			require.NoError(t, c.DropCollection(ctx, milvusclient.NewDropCollectionOption(name)))
			requireHas(ctx, t, c, name, false)
			names, err := c.ListCollections(ctx, milvusclient.NewListCollectionOption())
			require.NoError(t, err)
			require.NotContains(t, names, name)
		}},
		{"describe dropped collection fails with collection not found", func(t *testing.T) {
			_, err := c.DescribeCollection(ctx, milvusclient.NewDescribeCollectionOption(name))
			require.Error(t, err)
			// HasCollection in the SDK depends on exactly this code (100).
			require.True(t, errors.Is(err, merr.ErrCollectionNotFound), "want code %d, got %d: %v",
				merr.Code(merr.ErrCollectionNotFound), merr.Code(err), err)
			require.Contains(t, err.Error(), name)
		}},
	}
	runSteps(t, steps)
}

// TestCreateCollectionRejectsInvalidSchema checks that schemas Milvus refuses
// are refused with a reason and leave no collection behind.
func TestCreateCollectionRejectsInvalidSchema(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	tests := []struct {
		name     string
		spec     fieldSpec
		mentions string
		code     error // Milvus error the status code must match; nil when Milvus versions disagree
	}{
		{
			name:     "no vector field",
			spec:     fieldSpec{withPK: true},
			mentions: "schema does not contain vector field",
			code:     merr.ErrParameterInvalid,
		},
		{
			// Milvus 2.4/2.5 answer code 65535, master answers 1101; only the message is stable.
			name:     "no primary key",
			spec:     fieldSpec{withVector: true, dim: vecDim},
			mentions: "primary key is not specified",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := uniqueName("weir_compat_bad")
			dropAtCleanup(t, c, name)

			err := c.CreateCollection(ctx, createOption(name, tt.spec))
			requireMentions(t, err, tt.mentions)
			if tt.code != nil {
				require.True(t, errors.Is(err, tt.code), "want code %d, got %d: %v", merr.Code(tt.code), merr.Code(err), err)
			}
			requireHas(ctx, t, c, name, false)
		})
	}
}
