/**
 * @ferry/transfer: the two halves of moving a file, shared by client and server. The sending half reads
 * a file's blocks from a store and returns its SHA-256 once every block is acknowledged; the receiving
 * half writes blocks into a resumable upload and commits it once the sender's digest is known. A bundle
 * moves several small files back to back as one transfer.
 */
export { IncomingBundle, joinBundle, OutgoingBundle, splitBundle } from './bundle.js';
export { IncomingFile } from './receive.js';
export { heldBytes, type ResumeOffer, resumeOffer } from './resume.js';
export { OutgoingFile, type OutgoingFileOptions } from './send.js';
