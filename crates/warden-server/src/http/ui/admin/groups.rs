//! Groups in the console: the paginated list, creation, and a group's page with its direct or
//! effective members (a page at a time, from the index) and the forms that add and remove
//! members (accounts, or groups to nest).

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use warden_core::access::Permission;
use warden_core::api::{AddMembers, CreateGroup, MemberEntry};
use warden_core::model::{Group, NameOrId, SubjectKind};

use super::{ListQuery, Pager, Section, sections};
use crate::http::App;
use crate::http::session::escape_query;
use crate::http::ui::{Button, Chrome, FieldError, Posted, Viewer, Visit, after, failed, filled, see_other};
use crate::services::ServiceError;
use crate::services::directory::ListRequest;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/admin/groups", get(list).post(create))
        .route("/admin/groups/{group}", get(detail))
        .route("/admin/groups/{group}/members", post(add_member))
        .route("/admin/groups/{group}/members/{member}/remove", post(remove_member))
        .route("/admin/groups/{group}/delete", post(delete))
}

#[derive(Template)]
#[template(path = "admin/groups.html")]
struct GroupsPage {
    chrome: Chrome,
    sections: Vec<Section>,
    groups: Vec<Group>,
    prefix: String,
    pager: Pager,
    can_write: bool,
}

async fn list_page(app: &App, visit: &Visit, viewer: &Viewer, q: ListQuery, chrome: Chrome, status: StatusCode) -> Response {
    let req = ListRequest { prefix: q.prefix.clone(), cursor: q.cursor.clone(), limit: Some(super::PAGE_SIZE) };
    match app.directory.list_groups(&viewer.principal, &req).await {
        Ok(page) => {
            let page = GroupsPage {
                chrome,
                sections: sections(viewer),
                pager: Pager::new("/admin/groups", &q, page.next_cursor.as_deref()),
                groups: page.items,
                prefix: q.prefix.unwrap_or_default(),
                can_write: viewer.holds(Permission::GroupsWrite),
            };
            visit.page(status, &page)
        }
        Err(e) => visit.problem(Some(viewer), &e),
    }
}

async fn list(State(app): State<App>, visit: Visit, viewer: Viewer, Query(q): Query<ListQuery>) -> Response {
    let chrome = visit.chrome("Groups", Some(&viewer));
    list_page(&app, &visit, &viewer, q, chrome, StatusCode::OK).await
}

#[derive(Deserialize)]
struct NewGroup {
    name: String,
    #[serde(default)]
    description: String,
}

async fn create(State(app): State<App>, visit: Visit, viewer: Viewer, Posted(form): Posted<NewGroup>) -> Response {
    let req = CreateGroup { name: form.name.trim().to_owned(), description: filled(Some(&form.description)) };
    match app.directory.create_group(&viewer.principal, req).await {
        Ok(group) => see_other(&format!("/admin/groups/{}", group.name)),
        Err(e @ ServiceError::Core(warden_core::CoreError::NotElevated)) => failed(&visit, &viewer, &e, "/admin/groups"),
        Err(e) => {
            let chrome = visit.chrome("Groups", Some(&viewer)).with_error(FieldError::of(&e));
            list_page(&app, &visit, &viewer, ListQuery::default(), chrome, crate::http::error::status_of(&e)).await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct MembersParams {
    #[serde(default)]
    effective: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/group.html")]
struct GroupPage {
    chrome: Chrome,
    sections: Vec<Section>,
    group: Group,
    members: Vec<MemberEntry>,
    effective: bool,
    next: Option<String>,
    can_write: bool,
}

impl GroupPage {
    /// How a member is named in the forms: a group as `group:NAME`, an account by its name.
    fn member_ref(entry: &MemberEntry) -> String {
        match entry.subject.kind {
            SubjectKind::Group => format!("group:{}", entry.subject.name),
            SubjectKind::ServiceAccount => format!("sa:{}", entry.subject.name),
            SubjectKind::User => entry.subject.name.to_string(),
        }
    }
}

async fn group_page(app: &App, visit: &Visit, viewer: &Viewer, name: &str, params: &MembersParams, chrome: Chrome) -> Response {
    let me = &viewer.principal;
    let key = match NameOrId::parse(name) {
        Ok(k) => k,
        Err(e) => return visit.problem(Some(viewer), &e.into()),
    };
    let group = match app.directory.group(me, &key).await {
        Ok(g) => g,
        Err(e) => return visit.problem(Some(viewer), &e),
    };
    let effective = super::super::ticked(params.effective.as_deref());
    let req = ListRequest { prefix: None, cursor: params.cursor.clone(), limit: Some(super::PAGE_SIZE) };
    let members = match app.directory.members(me, &NameOrId::Id(group.id), effective, &req).await {
        Ok(page) => page,
        Err(e) => return visit.problem(Some(viewer), &e),
    };
    let next = members.next_cursor.map(|c| {
        let base = format!("/admin/groups/{}?cursor={}", group.name, escape_query(&c));
        if effective { format!("{base}&effective=1") } else { base }
    });
    let page = GroupPage {
        chrome,
        sections: sections(viewer),
        group,
        members: members.items,
        effective,
        next,
        can_write: me.holds(Permission::GroupsWrite),
    };
    visit.page(StatusCode::OK, &page)
}

async fn detail(
    State(app): State<App>,
    visit: Visit,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(params): Query<MembersParams>,
) -> Response {
    let chrome = visit.chrome(format!("Group {name}"), Some(&viewer));
    group_page(&app, &visit, &viewer, &name, &params, chrome).await
}

#[derive(Deserialize)]
struct MemberForm {
    member: String,
}

/// `POST /admin/groups/{group}/members`: adds an account (`NAME`, `sa:NAME`) or nests a group
/// (`group:NAME`); a cycle is refused by the same rule as the API's.
async fn add_member(
    State(app): State<App>,
    visit: Visit,
    viewer: Viewer,
    Path(name): Path<String>,
    Posted(form): Posted<MemberForm>,
) -> Response {
    let back = format!("/admin/groups/{name}");
    let result = match NameOrId::parse(&name) {
        Ok(key) => app.directory.add_members(&viewer.principal, &key, AddMembers { members: vec![form.member.trim().to_owned()] }).await,
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(_) => see_other(&back),
        Err(e @ ServiceError::Core(warden_core::CoreError::NotElevated)) => failed(&visit, &viewer, &e, &back),
        Err(e) => {
            let chrome =
                visit.chrome(format!("Group {name}"), Some(&viewer)).with_error(FieldError::new("member", crate::http::ui::message_of(&e)));
            group_page(&app, &visit, &viewer, &name, &MembersParams::default(), chrome).await
        }
    }
}

async fn remove_member(
    State(app): State<App>,
    visit: Visit,
    viewer: Viewer,
    Path((name, member)): Path<(String, String)>,
    Posted(_): Button,
) -> Response {
    let back = format!("/admin/groups/{name}");
    let result = match NameOrId::parse(&name) {
        Ok(key) => app.directory.remove_member(&viewer.principal, &key, &member).await,
        Err(e) => Err(e.into()),
    };
    after(&visit, &viewer, result, &back, &back)
}

async fn delete(State(app): State<App>, visit: Visit, viewer: Viewer, Path(name): Path<String>, Posted(_): Button) -> Response {
    let result = match NameOrId::parse(&name) {
        Ok(key) => app.directory.delete_group(&viewer.principal, &key).await.map(|_| ()),
        Err(e) => Err(e.into()),
    };
    after(&visit, &viewer, result, "/admin/groups", &format!("/admin/groups/{name}"))
}
