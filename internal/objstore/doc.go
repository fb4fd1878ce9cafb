// Package objstore stores immutable objects under string keys, in a local
// directory (Local, the default), an S3-compatible bucket (S3) or memory
// (Memory, for unit tests), behind the Bucket and BucketReader interfaces.
//
// Every implementation keeps these guarantees, and one contract test runs
// against all of them:
//
//   - Put is atomic. A reader sees the whole object or nothing (or the
//     previous object under the key); a crash in the middle of a Put never
//     leaves a partial object visible. Local stages the bytes in a hidden
//     folder of its root, fsyncs them, renames them into place and fsyncs
//     the directories whose entries changed, so a Put that returned nil
//     also survives a crash; S3 shows an object only once its upload is
//     complete. Put replaces an existing object.
//   - PutStream is Put for an object written by a function, which Local
//     and S3 store as it is written (a staged file; parts of 16 MiB), so
//     that an object of any size costs the writer little memory. It is
//     atomic like Put, and stores nothing when the function fails.
//   - Keys are '/'-separated relative paths of UTF-8 text, checked the same
//     way everywhere (ErrInvalidKey otherwise): not empty, no leading '/',
//     no empty, "." or ".." element (so no trailing '/' or "//" either), no
//     backslash, no NUL, at most 1024 bytes in all (including an S3 prefix)
//     and 255 bytes per element, and a first element other than
//     ".objstore-tmp", which Local reserves for staging.
//   - List visits every object whose key starts with prefix (a plain string
//     prefix, not only whole elements: "seg/1" matches "seg/12/a"),
//     recursively, in byte order of the keys, and stops at and returns the
//     first error its callback returns. It reports only keys that follow
//     the key rules.
//   - Delete is idempotent: deleting a missing key returns nil.
//   - A missing object gives an error for which IsNotFound is true, from
//     Get, GetRange and Stat alike.
//   - GetRange(key, off, length) returns the bytes [off, off+length) cut at
//     the end of the object; off equal to the size gives an empty result,
//     a negative argument or an off past the end gives ErrInvalidRange.
//   - A call whose context is already done does nothing and returns an
//     error wrapping the context's error; List also checks the context
//     between objects. S3 abandons a request in flight when the context
//     ends; Local does not interrupt a file operation already started.
//
// One limit comes from the filesystem: in a Local bucket a key cannot be
// both an object and the directory of other objects ("a" and "a/b"); the
// second Put of such a pair fails. S3 and Memory accept both.
package objstore
