/**
 * Ring peer ids of one router across its incarnations (docs/ring.md,
 * "Ring ids"). The first incarnation uses the router's nickname; after a
 * retirement (reclaim, rmpeer, reset, a lost data directory) the router
 * rejoins as `nickname.2`, then `nickname.3`, and so on. A retired id never
 * comes back.
 *
 * Nicknames may contain dots, so `web.2` could be nickname "web.2" or the
 * second incarnation of "web". The helpers therefore always take the
 * nickname, and `nextRingId` skips every id the ring already knows, so a
 * derived id never collides with an existing one.
 */
import { BadRequestError } from '../errors.js';
import { isNickname } from '../mesh/peer-id.js';
import type { PeerId, Ring } from '../ring/index.js';

const GEN_RE = /^(?:[2-9]|[1-9][0-9]{1,8})$/;

function checkNickname(nickname: string): void {
  if (!isNickname(nickname)) throw new BadRequestError(`${JSON.stringify(nickname)} is not a valid nickname`);
}

/** The ring id of incarnation `gen` (1 = the nickname itself). */
export function ringIdFor(nickname: string, gen = 1): PeerId {
  checkNickname(nickname);
  if (!Number.isSafeInteger(gen) || gen < 1 || gen > 999_999_999) throw new BadRequestError(`generation ${gen} is out of range`);
  return gen === 1 ? nickname : `${nickname}.${gen}`;
}

/** Which incarnation of `nickname` the id is (1, 2, ...), or undefined when it is not one of its ids. */
export function generationOf(nickname: string, id: PeerId): number | undefined {
  if (id === nickname) return 1;
  if (!id.startsWith(`${nickname}.`)) return undefined;
  const rest = id.slice(nickname.length + 1);
  return GEN_RE.test(rest) ? Number(rest) : undefined;
}

/**
 * The id to rejoin under after `current` was retired: the next generation
 * of `nickname` that `ring` does not know (live or retired). When `current`
 * is not an id of `nickname` (the host was renamed), the count starts at 1.
 */
export function nextRingId(nickname: string, current: PeerId, ring?: Ring): PeerId {
  checkNickname(nickname);
  let gen = (generationOf(nickname, current) ?? 0) + 1;
  for (;;) {
    const id = ringIdFor(nickname, gen);
    if (id !== current && !ring?.peers.has(id)) return id;
    gen++;
  }
}

/**
 * The nickname candidates for a ring id, most likely first: the id itself
 * (a first incarnation, or a nickname that ends in `.N`), then the id
 * without a trailing `.N`. The daemon's `meshPeerOf` tries them in order
 * against the mesh topology; a wrong guess is harmless because every
 * unicast names its ring recipient and is refused by anyone else.
 */
export function nicknameCandidates(id: PeerId): string[] {
  const out: string[] = [];
  if (isNickname(id)) out.push(id);
  const m = /^(.+)\.([0-9]+)$/.exec(id);
  if (m && GEN_RE.test(m[2]!) && isNickname(m[1])) out.push(m[1]!);
  return out;
}
