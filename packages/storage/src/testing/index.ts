/** Test helpers of @ferry/storage: file systems that fail the way a full or broken disk does. */
export { failPartialWritesAfter, faultyFileSystem, type HandleOverrides, systemError } from './faults.js';
