# Berth 网页界面，简体中文。键必须与 en.ftl 完全一致（有测试检查）。
app-name = Berth
nav-projects = 项目
nav-sign-in = 登录
nav-sign-out = 退出登录
nav-language = 语言
nav-skip = 跳到主要内容
signed-in-as = 当前用户：{ $user }

login-title = 登录 Berth
login-username = 用户名
login-password = 密码
login-submit = 登录
login-failed = 用户名或密码错误。
login-throttled = 登录失败次数过多，请在 { $seconds } 秒后重试。
login-robot = 机器人账户不能在此登录，请使用其密钥执行 docker login。
login-missing = 请输入用户名和密码。
login-stale = 登录表单已过期，请重试。

projects-title = 项目
projects-search = 搜索项目
projects-search-submit = 搜索
projects-name = 名称
projects-access = 访问级别
projects-repositories = 镜像仓库
projects-created = 创建时间
projects-public = 公开
projects-private = 私有
projects-empty = 还没有项目。
projects-none-match = 没有与“{ $query }”匹配的项目。
projects-count = 共 { $count } 个项目

project-title = 项目 { $name }
project-repositories = 镜像仓库
project-repository-artifacts = 制品
project-repository-updated = 最近推送
project-empty = 该项目还没有镜像仓库。可以这样推送：
project-push-hint = docker push { $registry }/{ $project }/镜像:标签

paging-previous = 上一页
paging-next = 下一页
paging-position = 第 { $page } 页，共 { $pages } 页

error-title = 出错了
error-not-found = 页面不存在，或者您无权查看。
error-forbidden = 您无权执行此操作。
error-csrf = 表单缺少有效的安全令牌，请刷新页面后重试。
error-unavailable = 注册中心暂时无法连接数据库，请稍后重试。
error-internal = 注册中心无法响应。服务器日志中请求 { $request } 下有详细信息。
error-back = 返回项目列表

project-new = 新建项目
project-new-name = 项目名称
project-new-name-help = 小写字母和数字，可用单个“.”、“_”或“-”分隔。
project-new-public = 公开（任何人都可以拉取）
project-new-submit = 创建项目
project-new-exists = 同名项目已存在。

repository-title = 镜像仓库 { $name }
repository-artifacts = 制品
repository-tags = 标签
repository-digest = 摘要
repository-size = 大小
repository-type = 类型
repository-pushed = 推送时间
repository-untagged = 无标签
repository-empty = 该镜像仓库没有制品。
repository-pull = 拉取命令
repository-pull-by-digest = 按摘要拉取
repository-copy = 复制
repository-platforms = { $count } 个平台
type-image = 镜像
type-index = 镜像索引
type-other = 制品

tab-repositories = 镜像仓库
tab-members = 成员
members-title = { $name } 的成员
members-name = 成员
members-kind = 类型
members-role = 角色
members-user = 用户
members-group = LDAP 组
members-empty = 该项目没有成员。
members-add = 添加成员
members-add-name = 用户名或 LDAP 组 DN
members-add-submit = 添加
members-change = 修改角色
members-remove = 移除
members-remove-confirm = 确定将 { $name } 从该项目移除吗？
members-unknown-user = 不存在名为“{ $name }”的用户。
members-exists = { $name } 已经是成员，请在列表中修改角色。
role-projectAdmin = 项目管理员
role-maintainer = 维护人员
role-developer = 开发人员
role-guest = 访客
role-limitedGuest = 受限访客
