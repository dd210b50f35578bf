import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router-dom";
import { backend } from "../../api/endpoints";
import { ROLES, type Member, type Role } from "../../api/models";
import { UsersIcon } from "../../components/icons";
import { toastSuccess } from "../../components/toastStore";
import { useFormErrors } from "../../components/useFormErrors";
import {
  Avatar,
  ConfirmButton,
  EmptyState,
  RoleBadge,
  SelectField,
  SkeletonRows,
  SubmitButton,
  TextField,
} from "../../components/ui";
import { formatDateTime } from "../../lib/format";
import { auditKey, membersKey, projectKey, useProjectContext } from "./ProjectPage";

const ROLE_HELP: Record<Role, string> = {
  viewer: "reads everything",
  editor: "also creates and edits experiments, runs and sensors",
  owner: "also manages members and deletes",
};

export function MembersTab() {
  const { project, isOwner, members, membersLoading, myUserId } = useProjectContext();
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const refresh = () => {
    void queryClient.invalidateQueries({ queryKey: membersKey(project.id) });
    void queryClient.invalidateQueries({ queryKey: auditKey(project.id) });
  };
  const changeRole = useMutation({
    mutationFn: ({ member, role }: { member: Member; role: Role }) =>
      backend.projects.changeMember(project.id, member.user_id, role),
    onSuccess: (updated) => {
      toastSuccess("Role changed", `${updated.display_name} is now ${updated.role}.`);
      refresh();
      if (updated.user_id === myUserId) {
        void queryClient.invalidateQueries({ queryKey: projectKey(project.id) });
      }
    },
    onError: refresh, // put the select back to the real role
  });
  const remove = useMutation({
    mutationFn: (member: Member) => backend.projects.removeMember(project.id, member.user_id),
    onSuccess: (_data, member) => {
      if (member.user_id === myUserId) {
        toastSuccess("You left the project", project.name);
        void queryClient.invalidateQueries({ queryKey: ["projects"] });
        navigate("/projects");
        return;
      }
      toastSuccess("Member removed", member.email);
      refresh();
    },
  });

  return (
    <div style={{ display: "grid", gap: 20 }}>
      {isOwner && <AddMemberCard projectId={project.id} onAdded={refresh} />}
      <section className="card" aria-labelledby="members-title">
        <div className="card-header">
          <div>
            <h2 id="members-title">Members</h2>
            <p className="muted small">
              {isOwner
                ? "Owners add people, change roles and remove members."
                : "Only owners can add people or change roles."}
            </p>
          </div>
          {members && <span className="muted small">{members.length} total</span>}
        </div>
        {membersLoading ? (
          <SkeletonRows />
        ) : !members || members.length === 0 ? (
          <EmptyState icon={<UsersIcon />} title="No members" />
        ) : (
          <div className="table-wrap">
            <table className="table" data-testid="members-table">
              <thead>
                <tr>
                  <th scope="col">Member</th>
                  <th scope="col">Role</th>
                  <th scope="col">Added</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {members.map((member) => (
                  <tr key={member.user_id} data-testid="member-row" data-email={member.email}>
                    <td>
                      <div className="person">
                        <Avatar name={member.display_name} seed={member.user_id} />
                        <div>
                          <div className="name">
                            {member.display_name}
                            {member.user_id === myUserId && <span className="subtle"> (you)</span>}
                          </div>
                          <div className="muted small">{member.email}</div>
                        </div>
                      </div>
                    </td>
                    <td>
                      {isOwner ? (
                        <>
                          <label className="visually-hidden" htmlFor={`role-${member.user_id}`}>
                            Role of {member.display_name}
                          </label>
                          <select
                            id={`role-${member.user_id}`}
                            className="select"
                            style={{ width: 120, height: 32 }}
                            value={member.role}
                            disabled={changeRole.isPending}
                            onChange={(event) =>
                              changeRole.mutate({ member, role: event.target.value as Role })
                            }
                          >
                            {ROLES.map((role) => (
                              <option key={role} value={role}>
                                {role[0]!.toUpperCase() + role.slice(1)}
                              </option>
                            ))}
                          </select>
                        </>
                      ) : (
                        <RoleBadge role={member.role} />
                      )}
                    </td>
                    <td>{formatDateTime(member.created_at)}</td>
                    <td className="actions">
                      {(isOwner || member.user_id === myUserId) && (
                        <ConfirmButton
                          onConfirm={() => remove.mutate(member)}
                          pending={remove.isPending && remove.variables?.user_id === member.user_id}
                          confirmLabel={member.user_id === myUserId ? "Leave" : "Remove"}
                          ariaLabel={
                            member.user_id === myUserId
                              ? "Leave the project"
                              : `Remove ${member.display_name}`
                          }
                        >
                          {member.user_id === myUserId ? "Leave" : "Remove"}
                        </ConfirmButton>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </div>
  );
}

function AddMemberCard({ projectId, onAdded }: { projectId: string; onAdded: () => void }) {
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<Role>("editor");
  const form = useFormErrors(["email", "role"]);
  const add = useMutation({
    mutationFn: () => backend.projects.addMember(projectId, email.trim(), role),
    meta: { toast: false },
    onSuccess: (member) => {
      toastSuccess("Member added", `${member.display_name} joined as ${member.role}.`);
      setEmail("");
      form.clear();
      onAdded();
    },
    onError: (error) => form.handle(error, "Could not add the member"),
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!email.trim()) {
      form.setErrors({ email: "Enter the email of a registered user." });
      return;
    }
    add.mutate();
  };

  return (
    <section className="card" aria-labelledby="add-member-title">
      <div className="card-header">
        <div>
          <h2 id="add-member-title">Add a member</h2>
          <p className="muted small">They need an ETP account first.</p>
        </div>
      </div>
      <form onChange={form.onChange} className="card-body form-row inline" onSubmit={submit} noValidate aria-label="Add a member">
        <TextField
          label="Email"
          name="email"
          type="email"
          placeholder="colleague@lab.example"
          value={email}
          onChange={(event) => setEmail(event.target.value)}
          error={form.errors.email}
        />
        <SelectField
          label="Role"
          name="role"
          value={role}
          onChange={(event) => setRole(event.target.value as Role)}
          error={form.errors.role}
          hint={ROLE_HELP[role]}
        >
          {ROLES.map((value) => (
            <option key={value} value={value}>
              {value[0]!.toUpperCase() + value.slice(1)}
            </option>
          ))}
        </SelectField>
        <div className="inline-submit">
          <SubmitButton pending={add.isPending}>Add member</SubmitButton>
        </div>
      </form>
    </section>
  );
}
