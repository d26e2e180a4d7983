"""trailseal.core: the pure integrity core (ARCHITECTURE §3, §5).

Standard library, ``cryptography`` and ``orjson`` only: no IO, no clock (time is a
parameter), no threads. The server proves and the SDK verifies with this same code.
Every module's public names are re-exported here.
"""

from __future__ import annotations

from trailseal.core.canonical import (
    FAST_PATH_ENABLED as FAST_PATH_ENABLED,
)
from trailseal.core.canonical import (
    MAX_SAFE_INTEGER as MAX_SAFE_INTEGER,
)
from trailseal.core.canonical import (
    canonicalize as canonicalize,
)
from trailseal.core.canonical import (
    canonicalize_reference as canonicalize_reference,
)
from trailseal.core.checkpoint import (
    MAX_TREE_SIZE as MAX_TREE_SIZE,
)
from trailseal.core.checkpoint import (
    Checkpoint as Checkpoint,
)
from trailseal.core.checkpoint import (
    LogKeys as LogKeys,
)
from trailseal.core.checkpoint import (
    SignedCheckpoint as SignedCheckpoint,
)
from trailseal.core.checkpoint import (
    log_verifiers as log_verifiers,
)
from trailseal.core.checkpoint import (
    open_checkpoint as open_checkpoint,
)
from trailseal.core.checkpoint import (
    parse_checkpoint_body as parse_checkpoint_body,
)
from trailseal.core.checkpoint import (
    parse_uint64 as parse_uint64,
)
from trailseal.core.checkpoint import (
    sign_checkpoint as sign_checkpoint,
)
from trailseal.core.cosignature import (
    COSIGNATURE_SIZE as COSIGNATURE_SIZE,
)
from trailseal.core.cosignature import (
    MAX_TIMESTAMP as MAX_TIMESTAMP,
)
from trailseal.core.cosignature import (
    SIG_TYPE_COSIGNATURE_V1 as SIG_TYPE_COSIGNATURE_V1,
)
from trailseal.core.cosignature import (
    CosignatureSigner as CosignatureSigner,
)
from trailseal.core.cosignature import (
    CosignatureVerifier as CosignatureVerifier,
)
from trailseal.core.cosignature import (
    cosignature_message as cosignature_message,
)
from trailseal.core.cosignature import (
    cosignature_timestamp as cosignature_timestamp,
)
from trailseal.core.cosignature import (
    parse_verifier as parse_verifier,
)
from trailseal.core.encoding import (
    b64decode_canonical as b64decode_canonical,
)
from trailseal.core.encoding import (
    b64encode as b64encode,
)
from trailseal.core.encoding import (
    hex_to_bytes as hex_to_bytes,
)
from trailseal.core.entry import (
    ENTRY_VERSION as ENTRY_VERSION,
)
from trailseal.core.entry import (
    MAX_ENTRY_BYTES as MAX_ENTRY_BYTES,
)
from trailseal.core.entry import (
    VENDOR_PATTERN as VENDOR_PATTERN,
)
from trailseal.core.entry import (
    Entry as Entry,
)
from trailseal.core.entry import (
    EntryAssembler as EntryAssembler,
)
from trailseal.core.entry import (
    entry_bytes as entry_bytes,
)
from trailseal.core.entry import (
    entry_bytes_from_canonical as entry_bytes_from_canonical,
)
from trailseal.core.entry import (
    hash_entries as hash_entries,
)
from trailseal.core.entry import (
    parse_entry as parse_entry,
)
from trailseal.core.hashing import (
    HASH_SIZE as HASH_SIZE,
)
from trailseal.core.hashing import (
    RFC9162_SHA256 as RFC9162_SHA256,
)
from trailseal.core.hashing import (
    UNPREFIXED_SHA256 as UNPREFIXED_SHA256,
)
from trailseal.core.hashing import (
    ZERO_HASH as ZERO_HASH,
)
from trailseal.core.hashing import (
    Hasher as Hasher,
)
from trailseal.core.hashing import (
    PrefixedSHA256 as PrefixedSHA256,
)
from trailseal.core.hashing import (
    UnprefixedSHA256 as UnprefixedSHA256,
)
from trailseal.core.hashing import (
    chain_hash as chain_hash,
)
from trailseal.core.hashing import (
    leaf_hash as leaf_hash,
)
from trailseal.core.hashing import (
    node_hash as node_hash,
)
from trailseal.core.ids import (
    HOST_NAME_PATTERN as HOST_NAME_PATTERN,
)
from trailseal.core.ids import (
    ID_PATTERN as ID_PATTERN,
)
from trailseal.core.ids import (
    LOG_ID_PATTERN as LOG_ID_PATTERN,
)
from trailseal.core.ids import (
    UUID7_PATTERN as UUID7_PATTERN,
)
from trailseal.core.ids import (
    IdGenerator as IdGenerator,
)
from trailseal.core.ids import (
    new_log_id as new_log_id,
)
from trailseal.core.ids import (
    origin_for as origin_for,
)
from trailseal.core.ids import (
    uuid7 as uuid7,
)
from trailseal.core.ids import (
    validate_host_name as validate_host_name,
)
from trailseal.core.ids import (
    validate_log_id as validate_log_id,
)
from trailseal.core.merkle import (
    CompactRange as CompactRange,
)
from trailseal.core.merkle import (
    CompletedNode as CompletedNode,
)
from trailseal.core.merkle import (
    NodeId as NodeId,
)
from trailseal.core.merkle import (
    NodeReader as NodeReader,
)
from trailseal.core.merkle import (
    ProofPlan as ProofPlan,
)
from trailseal.core.merkle import (
    consistency_nodes as consistency_nodes,
)
from trailseal.core.merkle import (
    consistency_proof as consistency_proof,
)
from trailseal.core.merkle import (
    inclusion_nodes as inclusion_nodes,
)
from trailseal.core.merkle import (
    inclusion_proof as inclusion_proof,
)
from trailseal.core.merkle import (
    peak_node_ids as peak_node_ids,
)
from trailseal.core.merkle import (
    root_from_inclusion_proof as root_from_inclusion_proof,
)
from trailseal.core.merkle import (
    root_from_leaf_hashes as root_from_leaf_hashes,
)
from trailseal.core.merkle import (
    verify_consistency as verify_consistency,
)
from trailseal.core.merkle import (
    verify_inclusion as verify_inclusion,
)
from trailseal.core.note import (
    ED25519_PUBLIC_KEY_SIZE as ED25519_PUBLIC_KEY_SIZE,
)
from trailseal.core.note import (
    ED25519_SIGNATURE_SIZE as ED25519_SIGNATURE_SIZE,
)
from trailseal.core.note import (
    KEY_ID_SIZE as KEY_ID_SIZE,
)
from trailseal.core.note import (
    MAX_SIGNATURES as MAX_SIGNATURES,
)
from trailseal.core.note import (
    SIG_TYPE_ED25519 as SIG_TYPE_ED25519,
)
from trailseal.core.note import (
    Ed25519Key as Ed25519Key,
)
from trailseal.core.note import (
    Note as Note,
)
from trailseal.core.note import (
    NoteSignature as NoteSignature,
)
from trailseal.core.note import (
    NoteSigner as NoteSigner,
)
from trailseal.core.note import (
    NoteVerifier as NoteVerifier,
)
from trailseal.core.note import (
    OpenedNote as OpenedNote,
)
from trailseal.core.note import (
    Signer as Signer,
)
from trailseal.core.note import (
    Verifier as Verifier,
)
from trailseal.core.note import (
    VerifierKey as VerifierKey,
)
from trailseal.core.note import (
    check_note_text as check_note_text,
)
from trailseal.core.note import (
    decode_verifier_key as decode_verifier_key,
)
from trailseal.core.note import (
    ed25519_verify as ed25519_verify,
)
from trailseal.core.note import (
    encode_verifier_key as encode_verifier_key,
)
from trailseal.core.note import (
    is_valid_key_name as is_valid_key_name,
)
from trailseal.core.note import (
    key_id as key_id,
)
from trailseal.core.note import (
    open_note as open_note,
)
from trailseal.core.note import (
    parse_note as parse_note,
)
from trailseal.core.note import (
    parse_signer_key as parse_signer_key,
)
from trailseal.core.note import (
    parse_verifier_key as parse_verifier_key,
)
from trailseal.core.note import (
    sign_note as sign_note,
)
from trailseal.core.proofbundle import (
    MAX_PROOF_HASHES as MAX_PROOF_HASHES,
)
from trailseal.core.proofbundle import (
    PROOF_HEADER as PROOF_HEADER,
)
from trailseal.core.proofbundle import (
    ProofBundle as ProofBundle,
)
from trailseal.core.proofbundle import (
    parse_proof_bundle as parse_proof_bundle,
)
from trailseal.core.schema import (
    ACTION_PATTERN as ACTION_PATTERN,
)
from trailseal.core.schema import (
    ACTOR_TYPES as ACTOR_TYPES,
)
from trailseal.core.schema import (
    CODES as CODES,
)
from trailseal.core.schema import (
    DEFAULT_LIMITS as DEFAULT_LIMITS,
)
from trailseal.core.schema import (
    EVENT_MEMBERS as EVENT_MEMBERS,
)
from trailseal.core.schema import (
    MAX_EVENT_BYTES as MAX_EVENT_BYTES,
)
from trailseal.core.schema import (
    OUTCOMES as OUTCOMES,
)
from trailseal.core.schema import (
    STORED_TIMESTAMP_PATTERN as STORED_TIMESTAMP_PATTERN,
)
from trailseal.core.schema import (
    BatchProblem as BatchProblem,
)
from trailseal.core.schema import (
    Limits as Limits,
)
from trailseal.core.schema import (
    event_problems as event_problems,
)
from trailseal.core.schema import (
    format_timestamp as format_timestamp,
)
from trailseal.core.schema import (
    normalize_event as normalize_event,
)
from trailseal.core.schema import (
    parse_timestamp as parse_timestamp,
)
from trailseal.core.schema import (
    quick_check as quick_check,
)
from trailseal.core.schema import (
    validate_batch as validate_batch,
)
from trailseal.core.schema import (
    validate_event as validate_event,
)
from trailseal.core.schema import (
    with_read_defaults as with_read_defaults,
)
from trailseal.core.tiles import (
    MAX_TILE_LEVEL as MAX_TILE_LEVEL,
)
from trailseal.core.tiles import (
    TILE_HEIGHT as TILE_HEIGHT,
)
from trailseal.core.tiles import (
    TILE_WIDTH as TILE_WIDTH,
)
from trailseal.core.tiles import (
    EntryBundleId as EntryBundleId,
)
from trailseal.core.tiles import (
    TileId as TileId,
)
from trailseal.core.tiles import (
    TileUpdates as TileUpdates,
)
from trailseal.core.tiles import (
    decode_entry_bundle as decode_entry_bundle,
)
from trailseal.core.tiles import (
    encode_entry_bundle as encode_entry_bundle,
)
from trailseal.core.tiles import (
    encode_index as encode_index,
)
from trailseal.core.tiles import (
    entry_bundle_for_entry as entry_bundle_for_entry,
)
from trailseal.core.tiles import (
    entry_bundle_path as entry_bundle_path,
)
from trailseal.core.tiles import (
    node_hash_in_tile as node_hash_in_tile,
)
from trailseal.core.tiles import (
    node_reader_from_tiles as node_reader_from_tiles,
)
from trailseal.core.tiles import (
    parse_entry_bundle_path as parse_entry_bundle_path,
)
from trailseal.core.tiles import (
    parse_index_path as parse_index_path,
)
from trailseal.core.tiles import (
    parse_tile_path as parse_tile_path,
)
from trailseal.core.tiles import (
    partial_tiles as partial_tiles,
)
from trailseal.core.tiles import (
    tile_for_node as tile_for_node,
)
from trailseal.core.tiles import (
    tile_path as tile_path,
)
from trailseal.core.tiles import (
    tile_updates as tile_updates,
)
from trailseal.core.tiles import (
    tile_width as tile_width,
)
from trailseal.core.tiles import (
    tiles_for_nodes as tiles_for_nodes,
)
from trailseal.core.tiles import (
    tiles_for_size as tiles_for_size,
)
from trailseal.core.verify import (
    CHUNK as CHUNK,
)
from trailseal.core.verify import (
    RedactedLeaf as RedactedLeaf,
)
from trailseal.core.verify import (
    VerifiedEntry as VerifiedEntry,
)
from trailseal.core.verify import (
    VerifiedRun as VerifiedRun,
)
from trailseal.core.verify import (
    chain_head as chain_head,
)
from trailseal.core.verify import (
    chain_heads as chain_heads,
)
from trailseal.core.verify import (
    check_checkpoint_update as check_checkpoint_update,
)
from trailseal.core.verify import (
    check_entries as check_entries,
)
from trailseal.core.verify import (
    extend_tree as extend_tree,
)
from trailseal.core.verify import (
    leaf_hashes_of as leaf_hashes_of,
)
from trailseal.core.verify import (
    make_proof_bundle as make_proof_bundle,
)
from trailseal.core.verify import (
    merge_trees as merge_trees,
)
from trailseal.core.verify import (
    open_log_checkpoint as open_log_checkpoint,
)
from trailseal.core.verify import (
    verify_chain as verify_chain,
)
from trailseal.core.verify import (
    verify_log_range as verify_log_range,
)
from trailseal.core.verify import (
    verify_log_run as verify_log_run,
)
from trailseal.core.verify import (
    verify_proof_bundle as verify_proof_bundle,
)

__all__ = [
    "ACTION_PATTERN",
    "ACTOR_TYPES",
    "CHUNK",
    "CODES",
    "COSIGNATURE_SIZE",
    "DEFAULT_LIMITS",
    "ED25519_PUBLIC_KEY_SIZE",
    "ED25519_SIGNATURE_SIZE",
    "ENTRY_VERSION",
    "EVENT_MEMBERS",
    "FAST_PATH_ENABLED",
    "HASH_SIZE",
    "HOST_NAME_PATTERN",
    "ID_PATTERN",
    "KEY_ID_SIZE",
    "LOG_ID_PATTERN",
    "MAX_ENTRY_BYTES",
    "MAX_EVENT_BYTES",
    "MAX_PROOF_HASHES",
    "MAX_SAFE_INTEGER",
    "MAX_SIGNATURES",
    "MAX_TILE_LEVEL",
    "MAX_TIMESTAMP",
    "MAX_TREE_SIZE",
    "OUTCOMES",
    "PROOF_HEADER",
    "RFC9162_SHA256",
    "SIG_TYPE_COSIGNATURE_V1",
    "SIG_TYPE_ED25519",
    "STORED_TIMESTAMP_PATTERN",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "UNPREFIXED_SHA256",
    "UUID7_PATTERN",
    "VENDOR_PATTERN",
    "ZERO_HASH",
    "BatchProblem",
    "Checkpoint",
    "CompactRange",
    "CompletedNode",
    "CosignatureSigner",
    "CosignatureVerifier",
    "Ed25519Key",
    "Entry",
    "EntryAssembler",
    "EntryBundleId",
    "Hasher",
    "IdGenerator",
    "Limits",
    "LogKeys",
    "NodeId",
    "NodeReader",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "OpenedNote",
    "PrefixedSHA256",
    "ProofBundle",
    "ProofPlan",
    "RedactedLeaf",
    "SignedCheckpoint",
    "Signer",
    "TileId",
    "TileUpdates",
    "UnprefixedSHA256",
    "VerifiedEntry",
    "VerifiedRun",
    "Verifier",
    "VerifierKey",
    "b64decode_canonical",
    "b64encode",
    "canonicalize",
    "canonicalize_reference",
    "chain_hash",
    "chain_head",
    "chain_heads",
    "check_checkpoint_update",
    "check_entries",
    "check_note_text",
    "consistency_nodes",
    "consistency_proof",
    "cosignature_message",
    "cosignature_timestamp",
    "decode_entry_bundle",
    "decode_verifier_key",
    "ed25519_verify",
    "encode_entry_bundle",
    "encode_index",
    "encode_verifier_key",
    "entry_bundle_for_entry",
    "entry_bundle_path",
    "entry_bytes",
    "entry_bytes_from_canonical",
    "event_problems",
    "extend_tree",
    "format_timestamp",
    "hash_entries",
    "hex_to_bytes",
    "inclusion_nodes",
    "inclusion_proof",
    "is_valid_key_name",
    "key_id",
    "leaf_hash",
    "leaf_hashes_of",
    "log_verifiers",
    "make_proof_bundle",
    "merge_trees",
    "new_log_id",
    "node_hash",
    "node_hash_in_tile",
    "node_reader_from_tiles",
    "normalize_event",
    "open_checkpoint",
    "open_log_checkpoint",
    "open_note",
    "origin_for",
    "parse_checkpoint_body",
    "parse_entry",
    "parse_entry_bundle_path",
    "parse_index_path",
    "parse_note",
    "parse_proof_bundle",
    "parse_signer_key",
    "parse_tile_path",
    "parse_timestamp",
    "parse_uint64",
    "parse_verifier",
    "parse_verifier_key",
    "partial_tiles",
    "peak_node_ids",
    "quick_check",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "sign_checkpoint",
    "sign_note",
    "tile_for_node",
    "tile_path",
    "tile_updates",
    "tile_width",
    "tiles_for_nodes",
    "tiles_for_size",
    "uuid7",
    "validate_batch",
    "validate_event",
    "validate_host_name",
    "validate_log_id",
    "verify_chain",
    "verify_consistency",
    "verify_inclusion",
    "verify_log_range",
    "verify_log_run",
    "verify_proof_bundle",
    "with_read_defaults",
]
