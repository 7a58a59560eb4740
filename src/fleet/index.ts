/**
 * Fleet control over Redis: `joinFleet` makes an engine a member whose `fleet` layer follows
 * the set published on a channel; `publishFleet`, `renewFleet`, `fleetSet` and `fleetMembers`
 * are the publisher's side. record.ts holds the keys, the record and its signature;
 * connections.ts makes havoc's own (never instrumented) connections.
 */
export { joinFleet } from './member.js';
export type { FleetMember, FleetMemberStatus, JoinFleetOptions } from './member.js';
export { publishFleet, renewFleet, fleetSet, fleetMembers } from './publish.js';
export type { PublishFleetOptions, RenewFleetOptions } from './publish.js';
export { DEFAULT_CHANNEL } from './record.js';
export type { FleetAck, FleetRecord } from './record.js';
export type { FleetRedis } from './connections.js';
