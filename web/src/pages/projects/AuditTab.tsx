import { useInfiniteQuery } from "@tanstack/react-query";
import { useState } from "react";
import { backend } from "../../api/endpoints";
import { CopyButton } from "../../components/CopyButton";
import { HistoryIcon } from "../../components/icons";
import { Avatar, EmptyState, RoleBadge, SkeletonRows } from "../../components/ui";
import { describeAuditEvent, formatDateTime, relativeTime } from "../../lib/format";
import { auditKey, useProjectContext } from "./ProjectPage";

const ENTITY_TYPES = [
  { value: "", label: "All changes" },
  { value: "project", label: "Project" },
  { value: "member", label: "Members" },
  { value: "experiment", label: "Experiments" },
  { value: "run", label: "Runs" },
  { value: "sensor", label: "Sensors" },
];

export const AUDIT_PAGE_SIZE = 25;

export function AuditTab() {
  const { project, members } = useProjectContext();
  const [entityType, setEntityType] = useState("");
  const audit = useInfiniteQuery({
    queryKey: [...auditKey(project.id), entityType],
    queryFn: ({ pageParam }) =>
      backend.projects.audit(project.id, {
        entity_type: entityType || undefined,
        cursor: pageParam,
        limit: AUDIT_PAGE_SIZE,
      }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  const names: Record<string, string> = {};
  for (const member of members ?? []) names[member.user_id] = member.display_name;
  const events = audit.data?.pages.flatMap((page) => page.items) ?? [];

  return (
    <section className="card" aria-labelledby="audit-title">
      <div className="card-header">
        <div>
          <h2 id="audit-title">Audit log</h2>
          <p className="muted small">Every change in this project, newest first.</p>
        </div>
        <div>
          <label htmlFor="audit-filter" className="visually-hidden">
            Show
          </label>
          <select
            id="audit-filter"
            className="select"
            style={{ width: 170 }}
            value={entityType}
            onChange={(event) => setEntityType(event.target.value)}
          >
            {ENTITY_TYPES.map((type) => (
              <option key={type.value} value={type.value}>
                {type.label}
              </option>
            ))}
          </select>
        </div>
      </div>
      {audit.isPending ? (
        <SkeletonRows rows={5} />
      ) : events.length === 0 ? (
        <EmptyState icon={<HistoryIcon />} title="Nothing recorded yet">
          Changes to the project and its members will appear here.
        </EmptyState>
      ) : (
        <ol className="audit-list" data-testid="audit-list">
          {events.map((event) => {
            const actor = event.actor_id ? (names[event.actor_id] ?? "Former member") : "System";
            return (
              <li key={event.id} className="audit-item" data-testid="audit-item" data-action={event.action}>
                <Avatar name={actor} seed={event.actor_id ?? "system"} />
                <div>
                  <div>
                    <strong>{actor}</strong> {describeAuditEvent(event, names)}
                  </div>
                  <div className="meta">
                    <span className="action-tag">{event.action}</span>
                    {event.actor_role && <RoleBadge role={event.actor_role} />}
                    {event.request_id && (
                      <span className="request-id" style={{ display: "inline-flex", alignItems: "center", gap: 4 }}>
                        request <code>{event.request_id.slice(0, 12)}</code>
                        <CopyButton text={event.request_id} small label="" ariaLabel="Copy request id" />
                      </span>
                    )}
                  </div>
                </div>
                <time dateTime={event.created_at} title={formatDateTime(event.created_at)}>
                  {relativeTime(event.created_at)}
                </time>
              </li>
            );
          })}
        </ol>
      )}
      {audit.hasNextPage && (
        <div className="card-footer">
          <button
            type="button"
            className="btn"
            disabled={audit.isFetchingNextPage}
            onClick={() => void audit.fetchNextPage()}
          >
            {audit.isFetchingNextPage ? "Loading…" : "Load more"}
          </button>
        </div>
      )}
    </section>
  );
}
