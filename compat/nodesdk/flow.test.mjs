// The write path and collection calls of the Node SDK's README flow, against a running Weir
// (WEIR_ADDR, default localhost:19530), with Milvus 2.6's answers: what the SDK returns on
// success and the words and codes of its rejections. Run with `npm ci && npm test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MilvusClient, DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';

const address = process.env.WEIR_ADDR || 'localhost:19530';
const client = new MilvusClient({ address, timeout: 30000 });
const name = `weir_node_${Date.now().toString(36)}`;
const dim = 8;

const vec = (k) => Array.from({ length: dim }, (_, j) => k + j / 100);
const rows = (from, n) =>
  Array.from({ length: n }, (_, i) => ({ id: from + i, vector: vec(from + i), title: `book ${from + i}`, note: i % 2 ? null : 'even' }));

// assertRejected checks a Milvus status carries Milvus's words and code.
function assertRejected(status, words, code) {
  assert.notEqual(status.error_code, ErrorCode.SUCCESS, `expected a rejection containing "${words}"`);
  assert.ok(status.reason.includes(words), `reason "${status.reason}" lacks "${words}"`);
  if (code !== undefined) assert.equal(status.code, code, `code of "${status.reason}"`);
}

// settle returns the status of a call whether the SDK resolves with it or, as its
// createCollection does for a rejection, throws it.
const settle = (p) => p.catch((e) => (e && e.reason !== undefined ? e : Promise.reject(e)));

test('collection and write flow', async (t) => {
  t.after(async () => {
    await client.dropCollection({ collection_name: name });
    await client.closeConnection();
  });

  await t.test('create, has, describe', async () => {
    const st = await client.createCollection({
      collection_name: name,
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'vector', data_type: DataType.FloatVector, dim },
        { name: 'title', data_type: DataType.VarChar, max_length: 64 },
        { name: 'note', data_type: DataType.VarChar, max_length: 8, nullable: true },
        { name: 'score', data_type: DataType.Int32, default_value: 7 },
      ],
    });
    assert.equal(st.error_code, ErrorCode.SUCCESS, st.reason);
    const has = await client.hasCollection({ collection_name: name });
    assert.equal(has.value, true);
    const d = await client.describeCollection({ collection_name: name });
    assert.equal(d.status.error_code, ErrorCode.SUCCESS, d.status.reason);
    const byName = Object.fromEntries(d.schema.fields.map((f) => [f.name, f]));
    assert.equal(byName.note.nullable, true);
    assert.equal(byName.score.default_value, 7); // the SDK flattens the ValueField
    assert.equal(d.schema.autoID, false);
  });

  await t.test('insert, upsert, delete, flush, statistics', async () => {
    const ins = await client.insert({ collection_name: name, data: rows(0, 100) });
    assert.equal(ins.status.error_code, ErrorCode.SUCCESS, ins.status.reason);
    assert.equal(Number(ins.insert_cnt), 100);
    const up = await client.upsert({ collection_name: name, data: rows(0, 10) });
    assert.equal(up.status.error_code, ErrorCode.SUCCESS, up.status.reason);
    assert.equal(Number(up.upsert_cnt), 10);
    const del = await client.delete({ collection_name: name, filter: 'id in [90, 91]' });
    assert.equal(del.status.error_code, ErrorCode.SUCCESS, del.status.reason);
    assert.equal(Number(del.delete_cnt), 2);
    const fl = await client.flushSync({ collection_names: [name] });
    assert.equal(fl.status.error_code, ErrorCode.SUCCESS, fl.status.reason);
    const stats = await client.getCollectionStatistics({ collection_name: name });
    assert.equal(stats.status.error_code, ErrorCode.SUCCESS, stats.status.reason);
    assert.equal(stats.data.row_count, '110'); // as Milvus: deletes count until compaction
  });

  await t.test('FLAT index', async () => {
    const st = await client.createIndex({ collection_name: name, field_name: 'vector', index_type: 'FLAT', metric_type: 'L2' });
    assert.equal(st.error_code, ErrorCode.SUCCESS, st.reason);
    const d = await client.describeIndex({ collection_name: name, field_name: 'vector' });
    assert.equal(d.status.error_code, ErrorCode.SUCCESS, d.status.reason);
    assert.equal(d.index_descriptions[0].index_name, 'vector');
    assert.equal(d.index_descriptions[0].state, 'Finished');
    const bad = await settle(client.createIndex({ collection_name: name, field_name: 'title', index_type: 'FLAT', metric_type: 'L2' }));
    assertRejected(bad, 'index FLAT only supports vector data type', 1100);
  });

  await t.test('load, search, query, count, delete by filter, release', async () => {
    const ld = await client.loadCollectionSync({ collection_name: name });
    assert.equal(ld.error_code, ErrorCode.SUCCESS, ld.reason);
    const state = await client.getLoadState({ collection_name: name });
    assert.equal(state.state, 'LoadStateLoaded');
    const sr = await client.search({ collection_name: name, data: vec(5), limit: 3, output_fields: ['title', 'note'] });
    assert.equal(sr.status.error_code, ErrorCode.SUCCESS, sr.status.reason);
    assert.equal(sr.results.length, 3);
    assert.equal(String(sr.results[0].id), '5', 'a row finds itself');
    assert.equal(sr.results[0].score, 0);
    assert.equal(sr.results[0].title, 'book 5');
    assert.equal(sr.results[0].note, null, 'nullable values come back as null');
    assert.equal(sr.results[0].score === 0 && sr.results[1].score > 0, true);
    const q = await client.query({ collection_name: name, filter: 'id in [1, 2, 90]', output_fields: ['title', 'note', 'score'] });
    assert.equal(q.status.error_code, ErrorCode.SUCCESS, q.status.reason);
    assert.deepEqual(q.data.map((r) => [String(r.id), r.title, r.note, r.score]), [['1', 'book 1', null, 7], ['2', 'book 2', 'even', 7]]);
    const count = async () => {
      const c = await client.query({ collection_name: name, output_fields: ['count(*)'] });
      assert.equal(c.status.error_code, ErrorCode.SUCCESS, c.status.reason);
      return Number(c.data[0]['count(*)']);
    };
    assert.equal(await count(), 98, '100 keys, 2 deleted; the upserts replaced their rows');
    const del = await client.delete({ collection_name: name, filter: 'title like "book 5%"' });
    assert.equal(del.status.error_code, ErrorCode.SUCCESS, del.status.reason);
    assert.equal(await count(), 87, 'book 5 and book 50 to 59 deleted by a filter');
    const rel = await client.releaseCollection({ collection_name: name });
    assert.equal(rel.error_code, ErrorCode.SUCCESS, rel.reason);
    const after = await client.search({ collection_name: name, data: vec(5), limit: 3 });
    assertRejected(after.status, 'collection not loaded', 101);
  });

  await t.test('partitions', async () => {
    assert.equal((await client.createPartition({ collection_name: name, partition_name: 'p1' })).error_code, ErrorCode.SUCCESS);
    const parts = await client.showPartitions({ collection_name: name });
    assert.deepEqual(parts.partition_names, ['_default', 'p1']);
    assertRejected(await client.dropPartition({ collection_name: name, partition_name: '_default' }), 'default partition cannot be deleted', 65535);
    assertRejected(await client.createPartition({ collection_name: name, partition_name: 'a b' }), 'Partition name can only contain numbers, letters and underscores', 65535);
  });

  await t.test("rejections in Milvus's words", async () => {
    const missing = await client.describeCollection({ collection_name: 'notExist' });
    assertRejected(missing.status, "can't find collection[database=default][collection=notExist]", 100);
    const shards = await settle(client.createCollection({
      collection_name: `${name}_bad`,
      shards_num: 17,
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'vector', data_type: DataType.FloatVector, dim },
      ],
    }));
    assertRejected(shards, "maximum shards's number should be limited to 16", 65535);
    const badName = await settle(client.createCollection({
      collection_name: '1abc',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'vector', data_type: DataType.FloatVector, dim },
      ],
    }));
    assertRejected(badName, 'the first character of a collection name must be an underscore or letter', 1100);
    const tooLong = await client.insert({ collection_name: name, data: [{ id: 1, vector: vec(1), title: 'x'.repeat(65), note: null }] });
    assertRejected(tooLong.status, 'length of varchar field title exceeds max length', 1100);
    const badDelete = await client.delete({ collection_name: name, filter: 'id in [1' });
    assertRejected(badDelete.status, 'failed to create delete plan: cannot parse expression: id in [1', 1100);
    const missingPart = await client.insert({ collection_name: name, partition_name: 'aaa', data: rows(0, 1) });
    assertRejected(missingPart.status, 'partition not found[partition=aaa]', 200);
  });
});

// The README's vector index (HNSW with COSINE), IVF_FLAT with L2 and AUTOINDEX: built by the
// data node once the rows are flushed (the SDK does not wait: the flow polls describeIndex as the
// SDK's docs say), loaded, searched with ef or nprobe; each probed row finds itself.
test('vector indexes', async (t) => {
  const client = new MilvusClient({ address, timeout: 30000 }); // the flow above closes its own
  t.after(() => client.closeConnection());
  const n = 3000;
  // Pseudo-random rows (a hash of key and dimension), distinct in direction as in length.
  const annVec = (k) => Array.from({ length: dim }, (_, j) => {
    let h = Math.imul(k + 1, 2654435761) ^ Math.imul(j + 1, 40503);
    h = Math.imul(h ^ (h >>> 15), 2246822519);
    return ((h ^ (h >>> 13)) >>> 0) / 4294967296 - 0.5;
  });
  for (const c of [
    { index_type: 'HNSW', metric_type: 'COSINE', params: { M: 16, efConstruction: 200 }, search: { ef: 64 } },
    { index_type: 'IVF_FLAT', metric_type: 'L2', params: { nlist: 64 }, search: { nprobe: 16 } },
    { index_type: 'AUTOINDEX', metric_type: 'COSINE', search: {} },
  ]) {
    await t.test(c.index_type, async () => {
      const coll = `${name}_${c.index_type.toLowerCase()}`;
      try {
        const st = await client.createCollection({
          collection_name: coll,
          fields: [
            { name: 'id', data_type: DataType.Int64, is_primary_key: true },
            { name: 'vector', data_type: DataType.FloatVector, dim },
          ],
        });
        assert.equal(st.error_code, ErrorCode.SUCCESS, st.reason);
        const data = Array.from({ length: n }, (_, i) => ({ id: i, vector: annVec(i) }));
        const ins = await client.insert({ collection_name: coll, data });
        assert.equal(ins.status.error_code, ErrorCode.SUCCESS, ins.status.reason);
        await client.flushSync({ collection_names: [coll] });
        const ci = await client.createIndex({ collection_name: coll, field_name: 'vector', index_type: c.index_type, metric_type: c.metric_type, params: c.params });
        assert.equal(ci.error_code, ErrorCode.SUCCESS, ci.reason);
        let d;
        for (let i = 0; i < 600; i++) {
          d = await client.describeIndex({ collection_name: coll, field_name: 'vector' });
          if (d.index_descriptions[0].state === 'Finished') break;
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.equal(d.index_descriptions[0].state, 'Finished');
        assert.equal(Number(d.index_descriptions[0].indexed_rows), n);
        const ld = await client.loadCollectionSync({ collection_name: coll });
        assert.equal(ld.error_code, ErrorCode.SUCCESS, ld.reason);
        for (const k of [0, 7, 1234, 2999]) {
          const sr = await client.search({ collection_name: coll, data: annVec(k), limit: 5, params: c.search, consistency_level: 'Strong' });
          assert.equal(sr.status.error_code, ErrorCode.SUCCESS, sr.status.reason);
          assert.equal(sr.results.length, 5);
          assert.equal(String(sr.results[0].id), String(k), `${c.index_type}: row ${k} finds itself`);
        }
      } finally {
        await client.dropCollection({ collection_name: coll });
      }
    });
  }
});
