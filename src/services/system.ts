import { randomBytes } from 'node:crypto';
import type { RandomSource } from '../core/ports.ts';

export const systemRandom: RandomSource = { bytes: (length) => randomBytes(length) };
