import { Body, Controller, Param, Query } from '@nestjs/common';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { ApprovalsService } from './approvals.service';
import {
  ApprovalDetail,
  ApprovalList,
  DecideApprovalBody,
  DismissReviewBody,
  GatewayDismissBody,
  GatewayReviewBody,
  GatewayReviewList,
  GatewayReviewView,
  ListGatewayReviewsQuery,
  ListApprovalsQuery,
  ListReviewsQuery,
  ListViolationsQuery,
  RejectApprovalBody,
  ReviewBody,
  ReviewList,
  ReviewView,
  SettleApprovalBody,
  SettleReviewStepBody,
  TriageBody,
  ViolationList,
  ViolationView,
} from './oversight.schemas';
import { ReviewsService } from './reviews.service';
import { ViolationsService } from './violations.service';

@Controller('v1/approvals')
export class ApprovalsController {
  constructor(private readonly approvals: ApprovalsService) {}

  @Endpoint({ method: 'GET', operationId: 'listApprovals', summary: 'Approval requests: the org’s (approvers), or the caller’s own; `actionable=true` for those the caller may decide now', tag: 'Approvals', query: ListApprovalsQuery, response: ApprovalList })
  list(@Caller() p: Principal, @Query() q: z.infer<typeof ListApprovalsQuery>) {
    return this.approvals.list(p, q);
  }

  @Endpoint({ method: 'GET', path: ':id', operationId: 'getApproval', summary: 'One approval request: tool, arguments, why it waits, what the task had read (taint, labels), votes', tag: 'Approvals', response: ApprovalDetail, errors: [404] })
  get(@Caller() p: Principal, @Param('id') id: string) {
    return this.approvals.get(p, id);
  }

  @Endpoint({
    method: 'POST',
    path: ':id/approve',
    operationId: 'approveApproval',
    summary: 'Approve a Watched action (never one’s own; counted once per approver towards the quorum; step-up where the org requires it)',
    tag: 'Approvals',
    body: DecideApprovalBody,
    response: ApprovalDetail,
    errors: [404, 409],
  })
  approve(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof DecideApprovalBody>) {
    return this.approvals.approve(p, id, body);
  }

  @Endpoint({ method: 'POST', path: ':id/reject', operationId: 'rejectApproval', summary: 'Reject a Watched action (the model is told it was refused)', tag: 'Approvals', body: RejectApprovalBody, response: ApprovalDetail, errors: [404, 409] })
  reject(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof RejectApprovalBody>) {
    return this.approvals.reject(p, id, body);
  }

  @Endpoint({ method: 'POST', path: ':id/settle', operationId: 'settleApproval', summary: 'Settle an action whose outcome is unknown after a crash: done or not done (never re-run)', tag: 'Approvals', body: SettleApprovalBody, response: ApprovalDetail, errors: [404, 409] })
  settle(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof SettleApprovalBody>) {
    return this.approvals.settle(p, id, body);
  }
}

@Controller('v1/reviews')
export class ReviewsController {
  constructor(private readonly reviews: ReviewsService) {}

  @Endpoint({ method: 'GET', operationId: 'listReviews', summary: 'Tasks in review (Batched actions to accept or revert)', tag: 'Reviews', query: ListReviewsQuery, response: ReviewList })
  list(@Caller() p: Principal, @Query() q: z.infer<typeof ListReviewsQuery>) {
    return this.reviews.list(p, q);
  }

  // Before ':id': the gateway's Batched writes (no task holds them).
  @Endpoint({ method: 'GET', path: 'gateway', operationId: 'listGatewayReviews', summary: 'Batched writes made through the MCP gateway, listed under the member they acted for (pending by default)', tag: 'Reviews', query: ListGatewayReviewsQuery, response: GatewayReviewList })
  listGateway(@Caller() p: Principal, @Query() q: z.infer<typeof ListGatewayReviewsQuery>) {
    return this.reviews.listGateway(p, q);
  }

  @Endpoint({ method: 'POST', path: 'gateway/accept', operationId: 'acceptGatewayReviews', summary: 'Accept the named gateway actions (never one’s own; each one’s finishing step where it has one; step-up where the org requires it)', tag: 'Reviews', body: GatewayReviewBody, response: GatewayReviewList, errors: [403, 404, 409] })
  acceptGateway(@Caller() p: Principal, @Body() body: z.infer<typeof GatewayReviewBody>) {
    return this.reviews.decideGateway(p, 'accept', body);
  }

  @Endpoint({ method: 'POST', path: 'gateway/revert', operationId: 'revertGatewayReviews', summary: 'Revert the named gateway actions (each one’s undo call through its connector, newest first)', tag: 'Reviews', body: GatewayReviewBody, response: GatewayReviewList, errors: [404, 409] })
  revertGateway(@Caller() p: Principal, @Body() body: z.infer<typeof GatewayReviewBody>) {
    return this.reviews.decideGateway(p, 'revert', body);
  }

  @Endpoint({ method: 'POST', path: 'gateway/dismiss', operationId: 'dismissGatewayReviews', summary: 'Close the named gateway actions without running anything (neither undo nor finishing step; never one’s own; a reason is required)', tag: 'Reviews', body: GatewayDismissBody, response: GatewayReviewList, errors: [403, 404, 409] })
  dismissGateway(@Caller() p: Principal, @Body() body: z.infer<typeof GatewayDismissBody>) {
    return this.reviews.dismiss(p, null, body.actionIds, body);
  }

  @Endpoint({ method: 'POST', path: 'gateway/actions/:actionId/settle', operationId: 'settleGatewayReviewStep', summary: 'Settle a gateway action whose accept or revert was interrupted (its outcome unknown): done, or not done (pending again)', tag: 'Reviews', body: SettleReviewStepBody, response: GatewayReviewView, errors: [403, 404, 409] })
  settleGateway(@Caller() p: Principal, @Param('actionId') actionId: string, @Body() body: z.infer<typeof SettleReviewStepBody>) {
    return this.reviews.settleStep(p, null, actionId, body);
  }

  @Endpoint({ method: 'GET', path: ':id', operationId: 'getReview', summary: 'The review bundle of a task (id: the task id): its actions, which need review, their undo', tag: 'Reviews', response: ReviewView, errors: [404] })
  get(@Caller() p: Principal, @Param('id') id: string) {
    return this.reviews.get(p, id);
  }

  @Endpoint({ method: 'POST', path: ':id/accept', operationId: 'acceptReview', summary: 'Accept every pending action of the bundle (never one’s own task; step-up where the org requires it)', tag: 'Reviews', body: ReviewBody, response: ReviewView, errors: [404, 409] })
  accept(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof ReviewBody>) {
    return this.reviews.decide(p, id, null, 'accept', body);
  }

  @Endpoint({ method: 'POST', path: ':id/revert', operationId: 'revertReview', summary: 'Revert every pending action of the bundle (each one’s undo, newest first)', tag: 'Reviews', body: ReviewBody, response: ReviewView, errors: [404, 409] })
  revert(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof ReviewBody>) {
    return this.reviews.decide(p, id, null, 'revert', body);
  }

  @Endpoint({ method: 'POST', path: ':id/actions/:actionId/accept', operationId: 'acceptReviewAction', summary: 'Accept one action of the bundle (never one’s own task; step-up where the org requires it)', tag: 'Reviews', body: ReviewBody, response: ReviewView, errors: [404, 409] })
  acceptOne(@Caller() p: Principal, @Param('id') id: string, @Param('actionId') actionId: string, @Body() body: z.infer<typeof ReviewBody>) {
    return this.reviews.decide(p, id, actionId, 'accept', body);
  }

  @Endpoint({ method: 'POST', path: ':id/actions/:actionId/settle', operationId: 'settleReviewStep', summary: 'Settle an action whose accept or revert was interrupted (its outcome unknown): done, or not done (pending again)', tag: 'Reviews', body: SettleReviewStepBody, response: ReviewView, errors: [403, 404, 409] })
  settleOne(@Caller() p: Principal, @Param('id') id: string, @Param('actionId') actionId: string, @Body() body: z.infer<typeof SettleReviewStepBody>) {
    return this.reviews.settleStep(p, id, actionId, body);
  }

  @Endpoint({ method: 'POST', path: ':id/actions/:actionId/dismiss', operationId: 'dismissReviewAction', summary: 'Close one action of the bundle without running anything, when neither its undo nor its finishing step can run (never one’s own task; a reason is required)', tag: 'Reviews', body: DismissReviewBody, response: ReviewView, errors: [403, 404, 409] })
  dismissOne(@Caller() p: Principal, @Param('id') id: string, @Param('actionId') actionId: string, @Body() body: z.infer<typeof DismissReviewBody>) {
    return this.reviews.dismiss(p, id, [actionId], body);
  }

  @Endpoint({ method: 'POST', path: ':id/actions/:actionId/revert', operationId: 'revertReviewAction', summary: 'Revert one action of the bundle (its undo call, through the connector)', tag: 'Reviews', body: ReviewBody, response: ReviewView, errors: [404, 409] })
  revertOne(@Caller() p: Principal, @Param('id') id: string, @Param('actionId') actionId: string, @Body() body: z.infer<typeof ReviewBody>) {
    return this.reviews.decide(p, id, actionId, 'revert', body);
  }
}

@Controller('v1/violations')
export class ViolationsController {
  constructor(private readonly violations: ViolationsService) {}

  @Endpoint({ method: 'GET', operationId: 'listViolations', summary: 'Forbidden attempts opened for triage', tag: 'Violations', query: ListViolationsQuery, response: ViolationList })
  list(@Caller() p: Principal, @Query() q: z.infer<typeof ListViolationsQuery>) {
    return this.violations.list(p, q);
  }

  @Endpoint({ method: 'GET', path: ':id', operationId: 'getViolation', summary: 'One violation and its evidence (task, action, argument digest, taint, labels)', tag: 'Violations', response: ViolationView, errors: [404] })
  get(@Caller() p: Principal, @Param('id') id: string) {
    return this.violations.get(p, id);
  }

  @Endpoint({ method: 'POST', path: ':id/confirm', operationId: 'confirmViolation', summary: 'Confirm: the user meant it (a strike; the second suspends agent access)', tag: 'Violations', body: TriageBody, response: ViolationView, errors: [404, 409] })
  confirm(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof TriageBody>) {
    return this.violations.triage(p, id, 'confirm', body);
  }

  @Endpoint({ method: 'POST', path: ':id/dismiss', operationId: 'dismissViolation', summary: 'Dismiss: the agent was steered by injected content (no strike)', tag: 'Violations', body: TriageBody, response: ViolationView, errors: [404, 409] })
  dismiss(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof TriageBody>) {
    return this.violations.triage(p, id, 'dismiss', body);
  }
}
