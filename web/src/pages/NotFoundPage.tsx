import { Link } from "react-router-dom";
import { EmptyState } from "../components/ui";

export function NotFoundPage() {
  return (
    <div className="page">
      <div className="card">
        <EmptyState
          title="Page not found"
          action={
            <Link to="/projects" className="btn btn-primary">
              Go to projects
            </Link>
          }
        >
          There is nothing at this address.
        </EmptyState>
      </div>
    </div>
  );
}
