import { describe, expect, it } from 'vitest';
import { ACK_EVERY, AckScheduler } from '../src/core/ack-scheduler.js';
import { AmplificationBudget } from '../src/core/amplification.js';

describe('AckScheduler', () => {
  it('owes nothing and sets no deadline before an ack-eliciting packet', () => {
    const acks = new AckScheduler(5);
    expect(acks.owed).toBe(0);
    expect(acks.due(1_000)).toBe(false);
    expect(acks.nextDeadline()).toBe(Number.POSITIVE_INFINITY);
  });

  it('acknowledges one in-order packet at most the max ack delay after it arrived', () => {
    const acks = new AckScheduler(5);
    acks.onAckEliciting(100, false);
    expect(acks.nextDeadline()).toBe(105);
    expect(acks.due(104.9)).toBe(false);
    expect(acks.due(105)).toBe(true);
    // A second packet does not push the deadline back: it counts from the first one owed.
    acks.onAckEliciting(103, false);
    expect(ACK_EVERY).toBe(2);
    expect(acks.due(103)).toBe(true);
    expect(acks.nextDeadline()).toBe(0);
  });

  it('acknowledges at once a packet that must be answered promptly (out of order, control, ping)', () => {
    const acks = new AckScheduler(5);
    acks.onAckEliciting(100, true);
    expect(acks.due(100)).toBe(true);
    expect(acks.nextDeadline()).toBe(0);
  });

  it('hurries only an ACK that is owed', () => {
    const acks = new AckScheduler(5);
    acks.hurry();
    expect(acks.due(0)).toBe(false);
    acks.onAckEliciting(10, false);
    acks.hurry();
    expect(acks.due(10)).toBe(true);
  });

  it('owes nothing once an ACK left, until the next ack-eliciting packet', () => {
    const acks = new AckScheduler(5);
    acks.onAckEliciting(10, true);
    acks.onAckEliciting(11, false);
    acks.onAckSent();
    expect(acks.owed).toBe(0);
    expect(acks.due(1_000)).toBe(false);
    acks.onAckEliciting(20, false);
    expect(acks.nextDeadline()).toBe(25);
  });
});

describe('AmplificationBudget', () => {
  it('lets everything through when not limited', () => {
    const budget = new AmplificationBudget();
    expect(budget.limited).toBe(false);
    expect(budget.fits(65_507)).toBe(true);
    budget.spend(1_000_000);
    budget.allow(5);
    expect(budget.fits(65_507)).toBe(true);
  });

  it('sends only whole datagrams that fit what is left of the cap, and grows by what is allowed', () => {
    const budget = new AmplificationBudget();
    budget.limit(300);
    expect(budget.limited).toBe(true);
    expect(budget.fits(300)).toBe(true);
    expect(budget.fits(301)).toBe(false);
    budget.spend(200);
    expect(budget.fits(101)).toBe(false);
    expect(budget.fits(100)).toBe(true);
    budget.allow(150);
    expect(budget.fits(250)).toBe(true);
    budget.limit(undefined);
    expect(budget.limited).toBe(false);
    expect(budget.fits(10_000)).toBe(true);
  });

  it('counts the bytes of authentic datagrams received', () => {
    const budget = new AmplificationBudget();
    budget.onAuthentic(1_205);
    budget.onAuthentic(101);
    expect(budget.authenticBytesReceived).toBe(1_306);
  });
});
