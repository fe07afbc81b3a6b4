import { recommend, type TuningNumbers } from './recommend';

const numbers = (o: { approved?: number; rejected?: number; expired?: number; median?: number | null; accepted?: number; reverted?: number; incidents?: number }): TuningNumbers => {
  const approved = o.approved ?? 0;
  const rejected = o.rejected ?? 0;
  const expired = o.expired ?? 0;
  const total = approved + rejected + expired;
  const accepted = o.accepted ?? 0;
  const reverted = o.reverted ?? 0;
  return {
    approvals: { total, approved, rejected, expired, approvalRate: total ? approved / total : null, medianDecisionSeconds: o.median ?? null },
    reviews: { total: accepted + reverted, accepted, reverted, revertRate: accepted + reverted ? reverted / (accepted + reverted) : null },
    incidents: o.incidents ?? 0,
  };
};

describe('trust tuning recommendations', () => {
  it('suggests a lower level only for many, nearly always, quickly approved cases', () => {
    expect(recommend(numbers({ approved: 40, median: 45 }), 'watched', null)).toMatchObject({ direction: 'lower', suggestedLevel: 'batched', draftable: true });
    expect(recommend(numbers({ approved: 29, median: 45 }), 'watched', null)).toBeNull(); // too few cases
    expect(recommend(numbers({ approved: 40, median: 900 }), 'watched', null)).toBeNull(); // slow: people look
    expect(recommend(numbers({ approved: 38, rejected: 2, median: 30 }), 'watched', null)).toBeNull(); // 95% < 97%
    expect(recommend(numbers({ accepted: 50 }), 'batched', null)).toMatchObject({ suggestedLevel: 'autonomous' });
    expect(recommend(numbers({ accepted: 45, reverted: 5 }), 'batched', null)).toMatchObject({ direction: 'higher', suggestedLevel: 'watched' });
  });

  it('respects floors: shown but not draftable', () => {
    expect(recommend(numbers({ approved: 40, median: 45 }), 'watched', 'watched')).toMatchObject({ direction: 'lower', draftable: false, suggestedLevel: 'watched' });
  });

  it('suggests a higher level for incidents, rejections and reverts', () => {
    expect(recommend(numbers({ approved: 100, median: 10, incidents: 1 }), 'watched', null)).toMatchObject({ direction: 'higher', suggestedLevel: 'forbidden' });
    expect(recommend(numbers({ accepted: 100, incidents: 2 }), 'batched', null)).toMatchObject({ direction: 'higher', suggestedLevel: 'watched' });
    expect(recommend(numbers({ approved: 4, rejected: 6 }), 'watched', null)).toMatchObject({ suggestedLevel: 'forbidden' });
    expect(recommend(numbers({ approved: 8, rejected: 3 }), 'watched', null)).toBeNull(); // 27% rejected: Watched is the right level
    expect(recommend(numbers({ incidents: 3 }), 'forbidden', null)).toBeNull();
  });
});
